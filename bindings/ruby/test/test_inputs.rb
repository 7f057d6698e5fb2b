# frozen_string_literal: true

require_relative "helper"
require "timeout"

# Arguments at the edges: infinite and NaN timeouts, options that do not fit
# their C fields, to_io from many threads at once, states made from Strings
# the caller changes afterwards.
class TestInputs < Minitest::Test
  OD = Hakuban::ObjectDescriptor
  WAIT = 5 # seconds: an upper bound, the waits return as soon as things happen
  INF = Float::INFINITY
  NAN = Float::NAN

  def setup
    Hakuban.log_level = :error # a listener closing logs lost links at :warn
    @ex = exchange(name: "inputs")
  end

  def teardown
    super
  ensure
    Hakuban.log_level = :warn
  end

  # An observe contract, an expose contract and the sink it was given.
  def assigned(name)
    expose = @ex.expose_object(name)
    observe = @ex.observe_object(name)
    sink = expose.next(timeout: WAIT) or flunk "no assignment for #{name.inspect}"
    [observe, expose, sink]
  end

  # Runs the block in a thread of its own once the calling thread is
  # blocked inside the library (so after the call it is about to make has
  # started), then yields to the caller's call; a failure in the thread is
  # raised in the caller (Thread#raise reaches a waiting thread within a
  # slice). Timeout is only the watchdog of a wait without a limit.
  def from_another_thread_while_waiting(action)
    caller_thread = Thread.current
    helper = Thread.new do
      Thread.current.report_on_exception = false
      wait_until_blocked(caller_thread)
      action.call
    rescue Exception => e # also a failed assertion: the caller must not wait forever
      caller_thread.raise(e)
    end
    Timeout.timeout(WAIT * 2) { yield }
  ensure
    helper&.kill&.join
  end

  def test_next_with_infinite_timeout_gets_an_item_sent_after_it_started
    observe, _expose, sink = assigned("inf-next")
    assert_nil observe.try_next, "an item was pending before the wait"
    state = from_another_thread_while_waiting(-> { sink << "late" }) do
      observe.next(timeout: INF)
    end
    assert_equal "late", state&.data
  end

  def test_wait_revoked_with_infinite_timeout
    observe, _expose, sink = assigned("inf-revoked")
    refute sink.revoked?
    assert(from_another_thread_while_waiting(-> { observe.close }) { sink.wait_revoked(timeout: INF) })
  end

  def test_connector_wait_with_infinite_timeout
    listener = exchange(name: "up").listen
    connector = @ex.connect(listener.url, min_backoff: 0.02, max_backoff: 0.2)
    status = Timeout.timeout(WAIT * 2) { connector.wait(:connected, timeout: INF) }
    assert status&.connected?, status.inspect
    # A change from another thread ends a wait for any change.
    changed = from_another_thread_while_waiting(-> { listener.close }) do
      connector.wait(nil, since: status, timeout: INF)
    end
    refute_equal status, changed
    # Negative and -Infinity: look once, do not wait.
    assert_nil connector.wait(:closed, timeout: -1)
    assert_nil connector.wait(:closed, timeout: -INF)
    e = assert_raises(Hakuban::InvalidArgumentError) { connector.wait(:connected, timeout: NAN) }
    assert_match(/\btimeout\b/, e.message)
    e = assert_raises(Hakuban::InvalidArgumentError) do
      connector.wait(nil, since: Hakuban::ConnectorStatus.new(:connected, -1, 0), timeout: 0)
    end
    assert_match(/since\.connects/, e.message)
  end

  def test_nan_timeouts_are_refused
    observe, _expose, sink = assigned("nan")
    e = assert_raises(Hakuban::InvalidArgumentError) { observe.next(timeout: NAN) }
    assert_match(/\btimeout\b.*NaN/, e.message)
    assert_equal Hakuban::RESULT_CODES[:HAKUBAN_ERR_INVALID_ARGUMENT], e.code
    sink << "pending"
    # Refused also when an item is pending: the argument is checked first.
    assert_raises(Hakuban::InvalidArgumentError) { observe.next(timeout: NAN) }
    assert_equal "pending", observe.next(timeout: 0).data
    e = assert_raises(Hakuban::InvalidArgumentError) { sink.wait_revoked(timeout: NAN) }
    assert_match(/\btimeout\b/, e.message)
    assert_raises(ArgumentError) { observe.next(timeout: "1") }
  end

  def test_negative_timeouts_do_not_wait
    observe, _expose, sink = assigned("negative")
    assert_nil observe.next(timeout: -1)
    assert_nil observe.next(timeout: -INF)
    sink << "there"
    assert_equal "there", observe.next(timeout: -INF).data
    refute sink.wait_revoked(timeout: -1)
    refute sink.wait_revoked(timeout: -INF)
    # A finite timeout too long for the clock's arithmetic waits without a
    # limit too; here something is pending, so it returns at once.
    sink << "again"
    assert_equal "again", observe.next(timeout: 10**400).data
  end

  def assert_refused_option(name, &block)
    e = assert_raises(Hakuban::InvalidArgumentError, "#{name}: not refused", &block)
    assert_match(/\A#{name}\b/, e.message)
    assert_equal Hakuban::RESULT_CODES[:HAKUBAN_ERR_INVALID_ARGUMENT], e.code
  end

  def test_options_that_do_not_fit_their_c_fields_are_refused_naming_the_option
    # ffi: RangeError (too large), a wrapped huge value (negative for
    # size_t), a truncated Float; FloatDomainError for infinite durations.
    assert_refused_option("max_tags") { Hakuban::Exchange.new(max_tags: 2**64) }
    assert_refused_option("max_tags") { Hakuban::Exchange.new(max_tags: -1) }
    assert_refused_option("max_descriptor_size") { Hakuban::Exchange.new(max_descriptor_size: 2**70) }
    assert_refused_option("max_moves_per_interval") { Hakuban::Exchange.new(max_moves_per_interval: 2**31) }
    assert_refused_option("max_moves_per_interval") { Hakuban::Exchange.new(max_moves_per_interval: 1.5) }
    assert_refused_option("handover_timeout") { Hakuban::Exchange.new(handover_timeout: INF) }
    assert_refused_option("handover_timeout") { Hakuban::Exchange.new(handover_timeout: 1e20) }
    assert_refused_option("rebalance_interval") { Hakuban::Exchange.new(rebalance_interval: NAN) }
    assert_refused_option("rebalance_interval") { Hakuban::Exchange.new(rebalance_interval: 2**62) }
    # In range for the field, out of range for the library: its own error.
    assert_raises(Hakuban::InvalidConfigError) { Hakuban::Exchange.new(max_moves_per_interval: 0) }
    # nil keeps the library's default; the largest field values still fit.
    Hakuban::Exchange.open(max_tags: nil, handover_timeout: nil) { |ex| assert_equal "exchange", ex.name }
    Hakuban::Exchange.open(max_moves_per_interval: 2**31 - 1) { |ex| assert_equal "exchange", ex.name }

    assert_refused_option("min_backoff") { @ex.connect("ws://127.0.0.1:1/", min_backoff: INF) }
    assert_refused_option("max_backoff") { @ex.connect("ws://127.0.0.1:1/", max_backoff: 2**63) }
    assert_refused_option("ping_timeout") { @ex.connect("ws://127.0.0.1:1/", ping_timeout: NAN) }
    assert_nil @ex.connector, "a refused connect leaves nothing behind"
    assert_refused_option("ping_interval") { @ex.listen(ping_interval: -INF) }
    assert_refused_option("ping_timeout") { @ex.listen(ping_timeout: 1e16) }
    assert_empty @ex.listeners
  end

  # Many threads ask obj for its IO at once. The first to reach the
  # library's fd call is held there (gate) until every other one is blocked:
  # on the lock (one IO) or, without one, in the fd call too (an IO each).
  def assert_one_io_from_many_threads(obj, threads: 8)
    entered = Queue.new
    gate = Queue.new
    start = Queue.new
    obj.singleton_class.class_eval do
      define_method(:native_fd) do |out, h|
        entered << Thread.current
        gate.pop
        super(out, h)
      end
      private :native_fd
    end
    askers = Array.new(threads) do
      Thread.new do
        Thread.current.report_on_exception = false
        start.pop
        obj.to_io
      end
    end
    threads.times { start << :go }
    first = entered.pop
    askers.each { |t| wait_until_blocked(t) unless t == first }
    threads.times { gate << :go }
    ios = askers.map(&:value)
    assert_equal 1, ios.map(&:object_id).uniq.size, "#{threads} threads got #{ios.uniq.size} different IOs"
    assert_equal 0, entered.size, "the library's fd was asked for #{entered.size + 1} times"
    assert_same ios.first, obj.to_io
    io = ios.first
    obj.close
    assert io.closed?, "the IO stays open after its owner closed"
    assert_raises(Hakuban::ClosedError) { obj.to_io }
  end

  def test_to_io_from_many_threads_at_once_is_one_io
    observe, _expose, sink = assigned("io-race")
    assert_one_io_from_many_threads(observe)
    assert_one_io_from_many_threads(sink)
  end

  def test_object_state_keeps_its_own_copies_of_strings
    data = +"abc"
    name = +"zstd"
    format = [name]
    st = Hakuban::ObjectState.new(data, format: format)
    data << "def"
    name.replace("JSON")
    format << "x"
    assert_equal "abc", st.data
    assert_equal ["zstd"], st.format
    assert st.data.frozen?
    assert(st.format.frozen? && st.format.all?(&:frozen?))
    # A frozen Array of Strings is not enough: its Strings can still change.
    name = +"lz4"
    st = Hakuban::ObjectState.new("x", format: [name].freeze)
    name.replace("JSON")
    assert_equal ["lz4"], st.format
    assert_raises(Hakuban::WrongFormatError) { st.json }

    # Nothing is copied that cannot change; binary stays binary.
    frozen = "frozen"
    assert_same frozen, Hakuban::ObjectState.new(frozen).data
    bytes = "\xFF\x00".b
    assert_equal Encoding::BINARY, Hakuban::ObjectState.new(bytes).data.encoding
    bytes << "\x01"
    assert_equal 3, bytes.bytesize
  end

  def test_format_cache_keys_cannot_be_changed_by_the_caller
    observe, _expose, sink = assigned("format-cache")
    name = +"fmt-#{object_id}"
    sent = name.dup
    sink.send("one", format: [name]) # plain data: format goes to the cache as given
    name.replace("JSON")
    assert_equal [sent], observe.next(timeout: WAIT).format
    keys = Hakuban::ObjectState::FORMAT_CACHE.keys
    assert(keys.all? { |k| k.frozen? && k.all?(&:frozen?) }, "a cached format can be changed: #{keys.inspect}")
    sink.send("two", format: [sent.dup])
    assert_equal [sent], observe.next(timeout: WAIT).format
  end
end
