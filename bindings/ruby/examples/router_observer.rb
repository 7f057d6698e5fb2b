# frozen_string_literal: true

# An observer in a process of its own, linked to a router: prints the
# kitchen's temperature whenever it changes, and why nothing arrives when
# nothing does. Its presence is what makes the exposer (router_exposer.rb,
# or examples/c's exposer) produce. See router_exposer.rb for how to run the
# two; this one exits after a number of readings (default 10).
#
#   ruby -Ilib examples/router_observer.rb [ws://127.0.0.1:3001/] [readings]

require "hakuban"

url = ARGV[0] || "ws://127.0.0.1:3001/"
readings = Integer(ARGV[1] || 10)
kitchen = Hakuban::ObjectDescriptor.new({ "room" => "kitchen" }, tags: ["temperatures"])
$stdout.sync = true

Hakuban::Exchange.open(name: "ruby-observer") do |exchange|
  connector = exchange.connect(url)
  until connector.wait(:connected, timeout: 2)
    warn "observer: no link to #{url} yet (#{connector.last_error || "connecting"}); still trying"
  end
  puts "observer: connected to #{url}"

  exchange.observe_object(kitchen) do |contract|
    seen = 0
    while seen < readings
      state = contract.next(timeout: 2)
      if state.nil? # e.g. :waiting_for_exposer (nobody exposes it), :stale
        puts "observer: nothing new for 2 s (#{contract.status}; link #{connector.state})"
      elsif state.synchronized?
        seen += 1
        puts "observer: kitchen is #{state.json["celsius"]} C (version #{state.version.inspect})"
      else # the exposer, or the link to it, is gone: the last state, marked stale
        puts "observer: kitchen was #{state.json["celsius"]} C, not synchronized " \
             "for #{state.unsynchronized_age.round(1)} s"
      end
    end
  end
end
