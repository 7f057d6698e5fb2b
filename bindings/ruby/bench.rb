# frozen_string_literal: true

# Benchmarks of the Ruby binding, on one in-process exchange, 64-byte states:
#
#   receive      states/s one Ruby thread takes from 1,000 observe contracts
#                that each have a state pending (sent before the clock
#                runs), reading each state fully: the binding's receive
#                rate. Target >= 150,000/s.
#   receive tag  the same through one tag observe contract (ObjectEvents).
#   send         the cost of one sink << data (a state handle made, sent,
#                dropped). Target <= 4 us.
#   concurrent   states/s a Ruby observer (#next in a loop) gets while a
#                native exposer (bench_exposer.c, a pthread that does not
#                compete for the GVL) writes as fast as it can. Latest wins:
#                the observer takes one state per wake-up. Informational: on
#                a 2-core machine the writer, the reader and the library's
#                threads time-share the CPUs, and the result measures that
#                (the Python binding's identical benchmark gets the same).
#   ping-pong    two Ruby threads, each blocked in #next on the other's
#                object: time per hop (send, wake-up of a thread blocked in
#                the library, GVL hand-off, receive).
#
# Each is run RUNS times (default 3); the median is reported.
#
#   ruby -Ilib bench.rb            (or: rake bench, make bench-ruby)

require "hakuban"
require "tmpdir"
require_relative "bench_native"

RUNS = Integer(ENV.fetch("RUNS", 3))
SECONDS = Float(ENV.fetch("SECONDS", 1.0))
PAYLOAD = ("x" * 64).b.freeze
OBJECTS = 1000

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def median(xs) = xs.sort[xs.size / 2]

# Runs the block (which returns [count, seconds]) RUNS times.
def measure(name, unit)
  rates = Array.new(RUNS) do
    n, secs = yield
    n / secs
  end
  m = median(rates)
  shown = unit == "us" ? format("%.2f us", 1e6 / m) : format("%d states/s", m)
  all = rates.map { |r| unit == "us" ? format("%.2f", 1e6 / r) : r.round.to_s }.join(", ")
  puts format("%-12s median %-20s (runs: %s)", name, shown, all)
  m
end

# OBJECTS objects, each exposed and observed; returns [sinks, observers].
def setup(ex, prefix, tag: nil)
  tags = tag ? [tag] : []
  exposes = Array.new(OBJECTS) { |i| ex.expose_object("#{prefix}-#{i}", tags: tags) }
  observers = tag ? [] : Array.new(OBJECTS) { |i| ex.observe_object("#{prefix}-#{i}", tags: tags) }
  sinks = exposes.map { |e| e.next(timeout: 5) or raise "no assignment" }
  [sinks, observers, exposes]
end

# The concurrent benchmark (see the top); ex is the exchange.
def bench_concurrent(ex)
  Dir.mktmpdir do |dir|
    helper = BenchNative.build(dir)
    unless helper
      puts "concurrent   skipped: no C compiler for bench_exposer.c"
      return
    end
    expose = ex.expose_object("native")
    observe = ex.observe_object("native")
    sink = expose.next(timeout: 5)
    sent_rates = []
    measure("concurrent", "states/s") do
      BenchNative.start(helper, sink)
      n = 0
      t0 = now
      while (t = now - t0) < SECONDS
        st = observe.next(timeout: 1) or raise "the native exposer stalled"
        st.data
        n += 1
      end
      sent_rates << helper.bench_exposer_stop / t
      nil while observe.try_next
      [n, t]
    end
    puts format("%-12s (the native exposer sent a median %d states/s)", "", median(sent_rates))
  end
end

Hakuban::Exchange.open(name: "bench") do |ex|
  puts "hakuban #{Hakuban.library_version}, Ruby #{RUBY_VERSION}, ffi #{FFI::VERSION}, " \
       "#{RUNS} runs of ~#{SECONDS} s, #{PAYLOAD.bytesize}-byte states"

  sinks, observers, = setup(ex, "recv")
  recv = measure("receive", "states/s") do
    n = 0
    t = 0.0
    while t < SECONDS
      sinks.each { |s| s << PAYLOAD }
      t0 = now
      observers.each { |o| n += 1 if o.try_next }
      t += now - t0
    end
    [n, t]
  end

  watch = ex.observe_tag("bench-tag")
  tsinks, = setup(ex, "tagged", tag: "bench-tag")
  tsinks.each { |s| s << PAYLOAD }
  nil while watch.try_next
  measure("receive tag", "states/s") do
    n = 0
    t = 0.0
    while t < SECONDS
      tsinks.each { |s| s << PAYLOAD }
      t0 = now
      n += 1 while watch.try_next
      t += now - t0
    end
    [n, t]
  end

  sink = sinks.first
  send = measure("send", "us") do
    n = 0
    t0 = now
    while (t = now - t0) < SECONDS
      1000.times { sink << PAYLOAD }
      n += 1000
    end
    [n, t]
  end

  # Ping-pong: two threads, each blocked in #next on the other's object.
  ping_e = ex.expose_object("ping")
  pong_e = ex.expose_object("pong")
  ping_o = ex.observe_object("ping")
  pong_o = ex.observe_object("pong")
  ping = ping_e.next(timeout: 5)
  pong = pong_e.next(timeout: 5)
  measure("ping-pong", "us") do
    stop = false
    echo = Thread.new do
      until stop
        st = ping_o.next(timeout: 1)
        pong << st.data if st
      end
    end
    n = 0
    t0 = now
    while now - t0 < SECONDS
      ping << PAYLOAD
      pong_o.next(timeout: 5) or raise "pong lost"
      n += 2 # two hops
    end
    t = now - t0
    stop = true
    echo.join
    [n, t]
  end

  bench_concurrent(ex)

  puts
  puts format("targets: receive >= 150,000 states/s: %s; send <= 4 us: %s",
              recv >= 150_000 ? "met" : "NOT met", 1e6 / send <= 4 ? "met" : "NOT met")
end
