# frozen_string_literal: true

# One exposer, one observer, in two threads of one process.
#
# The exposer produces only while somebody observes (lazy exposing): it
# waits for an assignment (a sink), writes until the sink is revoked, then
# waits again.
#
#   ruby -Ilib examples/expose_observe.rb

require "hakuban"

Hakuban::Exchange.open(name: "example") do |exchange|
  thermometer = Hakuban::ObjectDescriptor.new({ "sensor" => "thermometer", "room" => 12 }, tags: ["sensors"])

  producer = Thread.new do
    exchange.expose_object(thermometer) do |contract|
      contract.each do |sink| # one sink per assignment; ends when the contract closes
        puts "exposer: assigned (token #{sink.token}), producing"
        reading = 20.0
        until sink.revoked?
          sink.send_json({ "celsius" => (reading += 0.5) })
          sink.wait_revoked(timeout: 0.05) # a sensor's pace
        end
        puts "exposer: revoked, idle again"
        sink.close
      end
    end
  end

  exchange.observe_object(thermometer) do |contract|
    contract.each.with_index do |state, i|
      puts "observer: #{state.json} version=#{state.version} synchronized=#{state.synchronized?}"
      break if i == 4
    end
  end # closing the only observer revokes the exposer's sink

  exchange.close # ends the producer's contract.each
  producer.join
end
