# frozen_string_literal: true

# Tag contracts: one tag exposer produces every "sensors" object somebody
# asks for; a tag observer (a dashboard) sees each live one, and when it
# goes away.
#
#   ruby -Ilib examples/tags.rb

require "hakuban"

Hakuban::Exchange.open do |exchange|
  exchange.expose_tag("sensors", capacity: 10) do |exposer|
    exchange.observe_tag("sensors") do |dashboard|
      # Object observers are what make objects live; ask for three.
      observers = (1..3).map { |n| exchange.observe_object({ "sensor" => n }, tags: ["sensors"]) }

      3.times do
        sink = exposer.next(timeout: 5)
        sink.send_json({ "sensor" => sink.descriptor.value["sensor"], "value" => rand(100) })
      end

      seen = 0
      while seen < 3 && (event = dashboard.next(timeout: 5))
        next if event.state.data.empty? # live, nothing written yet

        puts "dashboard: #{event.descriptor.value} => #{event.state.json}"
        seen += 1
      end

      observers.first.close
      event = dashboard.next(timeout: 5) until event&.gone?
      puts "dashboard: #{event.descriptor.value} is gone"
      observers.drop(1).each(&:close)
    end
  end
end
