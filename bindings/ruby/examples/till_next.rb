# frozen_string_literal: true

# for_each_till_next: slow work on the newest state only. When a newer
# state arrives, the work on the outdated one is abandoned (its thread is
# killed, ensure clauses run) and restarted with the new state.
#
#   ruby -Ilib examples/till_next.rb

require "hakuban"

Hakuban::Exchange.open do |exchange|
  expose = exchange.expose_object("query")
  observe = exchange.observe_object("query")
  sink = expose.next(timeout: 5)
  done = Queue.new

  worker = Thread.new do
    observe.for_each_till_next do |state|
      finished = false
      puts "rendering #{state.data.inspect}..."
      begin
        sleep 0.3 # slow work
        finished = true
        puts "rendered #{state.data.inspect}"
        done << state.data
      ensure
        puts "abandoned #{state.data.inspect}" unless finished
      end
    end
  end

  %w[r ru rub ruby].each do |typed| # a user typing faster than we render
    sink << typed
    sleep 0.05
  end
  sink << "ruby bindings"
  done.pop
  observe.close # ends for_each_till_next
  worker.join
end
