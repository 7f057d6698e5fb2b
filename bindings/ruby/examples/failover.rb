# frozen_string_literal: true

# Failover: two exposers of one object. The elected one writes; when its
# contract closes, the other is elected at once, reads the last state
# (sink.current) and continues the count from it. Observers see the state
# marked not synchronized in between. The old sink can no longer write
# (fencing).
#
#   ruby -Ilib examples/failover.rb

require "hakuban"

Hakuban::Exchange.open do |exchange|
  counter = Hakuban::ObjectDescriptor.new("counter")
  primary = exchange.expose_object(counter)
  standby = exchange.expose_object(counter)
  observer = exchange.observe_object(counter)

  old_sink = primary.next(timeout: 5)
  3.times { |i| old_sink.send_json(i + 1) }
  puts "observer: #{observer.next(timeout: 5).json} (from the primary; standby is #{standby.status})"

  primary.close
  new_sink = standby.next(timeout: 5)
  stale = observer.next(timeout: 5)
  puts "observer: #{stale.json}, synchronized=#{stale.synchronized?} (primary gone)"

  last = new_sink.current.json
  new_sink.send_json(last + 1)
  fresh = observer.next(timeout: 5)
  puts "observer: #{fresh.json}, synchronized=#{fresh.synchronized?} (standby took over, token #{new_sink.token} > #{old_sink.token})"

  begin
    old_sink.send_json(-1)
  rescue Hakuban::RevokedError => e
    puts "old primary cannot write: #{e.class}"
  end
end
