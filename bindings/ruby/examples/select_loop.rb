# frozen_string_literal: true

# One thread serving several contracts with IO.select, the way an event
# loop would: wait for readable, then take with try_next until it returns
# nil. Each exposer writes twice in a row; latest wins, so the observer
# usually sees only the second state.
#
#   ruby -Ilib examples/select_loop.rb

require "hakuban"

Hakuban::Exchange.open do |exchange|
  exposers = %w[a b c].to_h { |name| [name, exchange.expose_object(name)] }
  observers = %w[a b c].map { |name| exchange.observe_object(name) }
  sinks = {}
  latest = {}

  until latest.values.count { |data| data.start_with?("second") } == 3
    ready, = IO.select([*exposers.values, *observers], nil, nil, 5)
    raise "nothing happened for 5 s" unless ready

    ready.each do |contract|
      while (item = contract.try_next)
        case item
        when Hakuban::ObjectStateSink # an exposer got assigned: write twice
          sinks[item.descriptor.value] = item
          item << "first #{item.descriptor.value}" << "second #{item.descriptor.value}"
        when Hakuban::ObjectState
          puts "#{contract.descriptor.value}: #{item.data}"
          latest[contract.descriptor.value] = item.data
        end
      end
    end
  end
end
