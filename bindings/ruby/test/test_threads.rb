# frozen_string_literal: true

require_relative "helper"

# Waiting without the GVL, interrupting waits, IO.select, the helpers.
class TestThreads < Minitest::Test
  WAIT = 5

  class Poke < StandardError; end

  def setup
    @ex = exchange
  end

  # Iterations of a pure-Ruby loop in secs seconds, run in its own thread.
  def count_for(secs)
    Thread.new do
      n = 0
      t0 = monotonic
      n += 1 while monotonic - t0 < secs
      n
    end.value
  end

  def test_four_threads_receive_while_another_keeps_running
    objects = 4.times.map { |i| "gvl-#{i}" }
    exposes = objects.map { |o| @ex.expose_object(o) }
    results = Queue.new
    receivers = objects.map do |o|
      observe = @ex.observe_object(o)
      Thread.new do
        seen = []
        observe.each do |st|
          seen << st.data
          break if st.data == "last"
        end
        results << [o, seen]
      end
    end
    sinks = exposes.map { |e| e.next(timeout: WAIT) }
    receivers.each { |t| wait_until_blocked(t) }

    # All four are now blocked inside the library. If they held the GVL, the
    # counter would get a fraction of its time (measured: ~0.15 with
    # blocking: false, ~1.0 with blocking: true).
    # Still waiting: alive, nothing received. (Not Thread#status: a waiter
    # comes back into Ruby every 100 ms slice and shows "run" while it
    # waits for the GVL the counter holds.)
    alone = count_for(0.3)
    assert receivers.all?(&:alive?) && results.empty?, "a receiver stopped waiting"
    with_waiters = count_for(0.3)
    assert receivers.all?(&:alive?) && results.empty?, "a receiver stopped waiting"
    ratio = with_waiters.to_f / alone
    assert_operator ratio, :>, 0.5, "the counter thread ran #{(ratio * 100).round} % of its speed while 4 threads waited: the GVL is held"

    sinks.each_with_index do |sink, i|
      50.times { |n| sink << "#{i}-#{n}" }
      sink << "last"
    end
    got = 4.times.map { results.pop }.to_h
    assert_equal objects.sort, got.keys.sort
    got.each_value { |seen| assert_equal "last", seen.last }
  end

  def test_thread_raise_reaches_a_waiting_thread
    observe = @ex.observe_object("raise")
    waiter = Thread.new do
      observe.next
      :not_interrupted
    rescue Poke
      monotonic
    end
    wait_until_blocked(waiter)
    t0 = monotonic
    waiter.raise(Poke)
    t1 = waiter.value
    assert_kind_of Float, t1
    assert_operator t1 - t0, :<, 0.5
  end

  def test_thread_kill_reaches_a_waiting_thread
    observe = @ex.observe_object("kill")
    ensured = Queue.new
    waiter = Thread.new do
      observe.next(timeout: 60)
    ensure
      ensured << monotonic
    end
    wait_until_blocked(waiter)
    t0 = monotonic
    waiter.kill
    assert_operator ensured.pop - t0, :<, 0.5
    waiter.join
  end

  def test_close_from_another_thread_ends_each
    observe = @ex.observe_object("close-me")
    runner = Thread.new { observe.each { nil } }
    wait_until_blocked(runner)
    t0 = monotonic
    observe.close
    assert_same observe, runner.value
    assert_operator monotonic - t0, :<, 0.5
    assert_raises(Hakuban::ClosedError) { observe.next }
  end

  # Closed while the block runs (not while waiting): each ends too, it does
  # not raise ClosedError on its next round.
  def test_close_while_the_block_runs_ends_each
    expose = @ex.expose_object("close-in-block")
    observe = @ex.observe_object("close-in-block")
    expose.next(timeout: 5) << "a"
    got = []
    assert_same observe, observe.each { |state| got << state.data; observe.close }
    assert_equal ["a"], got
  end

  def test_closing_the_exchange_ends_every_contract
    observe = @ex.observe_object("ex-close")
    expose = @ex.expose_tag("whatever")
    waiters = [observe, expose].map do |c|
      Thread.new do
        Thread.current.report_on_exception = false
        c.next
      end
    end
    waiters.each { |t| wait_until_blocked(t) }
    @ex.close
    waiters.each { |t| assert_raises(StopIteration) { t.value } }
    assert observe.ended?
    assert_raises(StopIteration) { observe.try_next }
    assert_equal [], observe.each.to_a
  end

  def test_next_timeout
    observe = @ex.observe_object("timeout")
    t0 = monotonic
    assert_nil observe.next(timeout: 0.3)
    assert_in_delta 0.3, monotonic - t0, 0.2
    assert_nil observe.next(timeout: 0)
    assert_nil observe.try_next
  end

  def test_io_select
    expose = @ex.expose_object("select")
    observe = @ex.observe_object("select")
    assert_kind_of IO, observe.to_io
    assert_same observe.to_io, observe.to_io
    sink = IO.select([expose], nil, nil, WAIT)&.first&.first&.then { expose.try_next }
    assert sink, "the expose contract's fd never became readable"
    # The fd may stay readable after the last item was taken, until a
    # try_next finds nothing (the documented protocol: drain, then select).
    assert_nil expose.try_next
    assert_nil observe.try_next
    assert_nil IO.select([observe], nil, nil, 0.05), "readable with nothing pending"

    sink << "one"
    ready, = IO.select([observe, expose], nil, nil, WAIT)
    assert_equal [observe], ready
    assert_equal "one", observe.try_next.data
    assert_nil observe.try_next
    assert_nil IO.select([observe], nil, nil, 0.05), "still readable after an empty try_next"

    refute IO.select([sink], nil, nil, 0.05), "sink readable while assigned"
    observe.close
    assert IO.select([sink], nil, nil, WAIT), "sink not readable after revocation"
    assert sink.revoked?
    sink.close
    assert_raises(Hakuban::ClosedError) { sink.to_io }
  end

  def test_each_without_block_is_an_enumerator
    expose = @ex.expose_object("enum")
    observe = @ex.observe_object("enum")
    sink = expose.next(timeout: WAIT)
    enum = observe.each
    assert_kind_of Enumerator, enum
    sink << "a"
    assert_equal "a", enum.next.data
    sink << "b"
    assert_equal ["b"], observe.first(1).map(&:data)
    sink << "c"
    assert_equal ["C"], observe.lazy.map { |s| s.data.upcase }.first(1)
  end

  def test_for_each_till_next_abandons_outdated_work
    expose = @ex.expose_object("till-next")
    observe = @ex.observe_object("till-next")
    sink = expose.next(timeout: WAIT)
    started = Queue.new
    finished = Queue.new
    abandoned = Queue.new
    gate = Queue.new
    runner = Thread.new do
      observe.for_each_till_next do |st|
        started << st.data
        done = false
        begin
          gate.pop
          done = true
          finished << st.data
        ensure
          abandoned << st.data unless done
        end
      end
    end
    sink << "1"
    assert_equal "1", started.pop
    sink << "2"
    assert_equal "2", started.pop
    assert_equal "1", abandoned.pop, "work on the outdated state was not abandoned"
    gate << :go
    assert_equal "2", finished.pop
    observe.close
    assert_nil runner.value
    assert abandoned.empty?
  end

  def test_for_each_till_next_raises_the_blocks_exception
    expose = @ex.expose_object("till-next-raise")
    observe = @ex.observe_object("till-next-raise")
    expose.next(timeout: WAIT) << "boom"
    e = assert_raises(Poke) { observe.for_each_till_next { |st| raise Poke, st.data } }
    assert_equal "boom", e.message
  end

  def test_for_each_till_revoked
    expose = @ex.expose_tag("producers")
    started = Queue.new
    abandoned = Queue.new
    runner = Thread.new do
      expose.for_each_till_revoked do |sink|
        started << sink.descriptor.value
        n = 0
        begin
          loop do
            sink << (n += 1).to_s
            Thread.pass
          end
        rescue Hakuban::RevokedError
          abandoned << [sink.descriptor.value, :revoked_error]
          sleep # stop here; till_revoked kills the thread
        ensure
          abandoned << sink.descriptor.value
        end
      end
    end
    observe = @ex.observe_object("p1", tags: ["producers"])
    assert_equal "p1", started.pop
    assert observe.next(timeout: WAIT)
    observe.close
    outcome = abandoned.pop
    outcome = abandoned.pop if outcome.is_a?(Array) # the send raced the revocation
    assert_equal "p1", outcome
    expose.close
    assert_nil runner.value
  end
end
