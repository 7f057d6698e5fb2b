# frozen_string_literal: true

# An exposer in a process of its own, linked to a router: "I can produce the
# temperature of the kitchen". It produces only while it holds an assignment
# (a sink), which it gets only while somebody observes the object, here or
# in any process linked to the same router. Run it with the observer:
#
#   make router && build/hakuban-router        # ws://127.0.0.1:3001/
#   ruby -Ilib examples/router_exposer.rb [ws://127.0.0.1:3001/]
#   ruby -Ilib examples/router_observer.rb [ws://127.0.0.1:3001/] [readings]
#
# (each in a terminal of its own).
#
# Start and stop the observer as often as you like: the exposer starts and
# stops producing accordingly. Kill the router and start it again: both
# reconnect by themselves and carry on. Stop the exposer with Ctrl-C. The
# object is the one of the C examples (examples/c), so a Ruby observer works
# with the C exposer and the other way round.

require "hakuban"

url = ARGV[0] || "ws://127.0.0.1:3001/"
kitchen = Hakuban::ObjectDescriptor.new({ "room" => "kitchen" }, tags: ["temperatures"])
$stdout.sync = true

begin
  Hakuban::Exchange.open(name: "ruby-exposer") do |exchange|
    # Returns at once and reconnects forever. Waiting is optional: contracts
    # are declared to the router whenever the link comes up.
    connector = exchange.connect(url)
    until connector.wait(:connected, timeout: 2) # raises RefusedError if refused for good
      warn "exposer: no link to #{url} yet (#{connector.last_error || "connecting"}); still trying"
    end
    puts "exposer: connected to #{url}"

    exchange.expose_object(kitchen) do |contract|
      celsius = 20.0
      contract.each do |sink| # an assignment: somebody observes the kitchen
        puts "exposer: assigned (token #{sink.token}): somebody observes, start producing"
        until sink.revoked?
          celsius += 0.5
          begin
            sink.send_json({ "celsius" => celsius })
            puts "exposer: sent #{celsius}"
          rescue Hakuban::RevokedError
            break # revoked between revoked? and send: the loop ends anyway
          end
          sink.wait_revoked(timeout: 0.1) # a reading every 100 ms
        end
        puts "exposer: assignment ended: nobody observes, stop producing"
        sink.close
      end
    end
  end
rescue Interrupt
  puts "exposer: interrupted, bye"
end
