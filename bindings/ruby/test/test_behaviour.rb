# frozen_string_literal: true

require_relative "helper"

# SPEC §2 from Ruby, on one in-process exchange.
class TestBehaviour < Minitest::Test
  OD = Hakuban::ObjectDescriptor
  WAIT = 5 # seconds: an upper bound, the waits return as soon as things happen

  # A bounded wait that must come back empty: for "nothing happens" checks.
  QUIET = 0.2

  # Versions are Arrays: Array#<=> is the lexicographic order (a prefix is
  # smaller) that SPEC 2.3 defines.
  def assert_newer(newer, older)
    assert_equal 1, newer <=> older, "version #{newer.inspect} is not newer than #{older.inspect}"
  end

  def setup
    @ex = exchange(name: "test")
  end

  def test_lazy_expose_assigns_only_while_observed
    d = OD.new({ "lazy" => 1 })
    expose = @ex.expose_object(d)
    assert_nil expose.next(timeout: QUIET), "assigned with nobody observing"
    assert_equal :no_observers, expose.status

    observe = @ex.observe_object(d)
    sink = expose.next(timeout: WAIT)
    assert_instance_of Hakuban::ObjectStateSink, sink
    assert_equal :active, expose.status
    assert_equal d, sink.descriptor
    refute sink.revoked?
    assert_equal :stale, observe.status # elected, nothing sent yet

    sink << "hi"
    assert_equal "hi", observe.next(timeout: WAIT).data
    assert_equal :active, observe.status

    observe.close
    assert sink.wait_revoked(timeout: WAIT), "assignment not revoked after the last observer left"
    assert sink.revoked?
    assert_raises(Hakuban::RevokedError) { sink << "nobody wants this" }
    assert_equal :no_observers, expose.status
  end

  def test_observer_without_exposer_waits
    observe = @ex.observe_object("nobody-exposes")
    assert_equal :waiting_for_exposer, observe.status
    assert_nil observe.next(timeout: QUIET)
    assert_nil observe.current
  end

  def test_election_tie_goes_to_longest_standing
    d = OD.new("tie")
    first = @ex.expose_object(d)
    second = @ex.expose_object(d)
    @ex.observe_object(d)
    assert first.next(timeout: WAIT)
    assert_equal :standby, second.status
    assert_nil second.try_next
  end

  def test_election_by_capacity
    d = OD.new("capacity")
    small = @ex.expose_object(d, capacity: 1)
    big = @ex.expose_object(d, capacity: 2) # younger, but less loaded after taking it
    @ex.observe_object(d)
    assert big.next(timeout: WAIT)
    assert_equal :standby, small.status
    assert_raises(Hakuban::InvalidCapacityError) { @ex.expose_object(d, capacity: 0) }
    assert_raises(Hakuban::InvalidCapacityError) { @ex.expose_tag("t", capacity: 2**30 + 1) }
  end

  def test_tag_exposers_share_objects_by_capacity
    small = @ex.expose_tag("shared", capacity: 1)
    big = @ex.expose_tag("shared", capacity: 3)
    observers = 4.times.map { |i| @ex.observe_object(i, tags: ["shared"]) }
    got = { small => [], big => [] }
    deadline = monotonic + WAIT
    while got.values.sum(&:size) < 4 && monotonic < deadline
      got.each_key do |c|
        while (sink = c.try_next)
          got[c] << sink
        end
      end
      IO.select([small, big], nil, nil, 0.1)
    end
    assert_equal [1, 3], [got[small].size, got[big].size]
    assert_equal observers.map(&:descriptor).sort_by(&:key), got.values.flatten.map(&:descriptor).sort_by(&:key)
  end

  def test_failover_when_the_exposer_closes
    d = OD.new("failover")
    a = @ex.expose_object(d)
    b = @ex.expose_object(d)
    observe = @ex.observe_object(d)
    sink_a = a.next(timeout: WAIT)
    sink_a.send_json({ "n" => 1 })
    first = observe.next(timeout: WAIT)
    assert first.synchronized?
    assert_equal({ "n" => 1 }, first.json)

    a.close
    sink_b = b.next(timeout: WAIT)
    assert sink_b, "no failover"
    assert_operator sink_b.token, :>, sink_a.token
    assert_equal first.data, sink_b.current.data, "the successor cannot read the last state"

    stale = observe.next(timeout: WAIT)
    refute stale.synchronized?
    assert_equal first.version, stale.version
    age = stale.unsynchronized_age
    assert_operator age, :>=, 0.0
    eventually(message: "the age of a stale state does not grow") { stale.unsynchronized_age > age + 0.02 }

    assert sink_a.revoked?
    assert_raises(Hakuban::RevokedError) { sink_a.send_json({ "n" => "late" }) } # fencing

    sink_b.send_json({ "n" => sink_b.current.json["n"] + 1 })
    fresh = observe.next(timeout: WAIT)
    assert fresh.synchronized?
    assert_equal({ "n" => 2 }, fresh.json)
    assert_newer fresh.version, first.version
  end

  def test_tag_contracts_alone_bring_nothing_to_life
    expose = @ex.expose_tag("sensors")
    watch = @ex.observe_tag("sensors")
    assert_nil expose.next(timeout: QUIET)
    assert_nil watch.try_next
    assert_equal :idle, watch.status
    assert_equal :no_observers, expose.status

    d = OD.new({ "sensor" => 7 }, tags: ["sensors", { "room" => 12 }])
    observe = @ex.observe_object(d)
    sink = expose.next(timeout: WAIT)
    assert_equal d, sink.descriptor
    sink.send_json(21.5)
    assert_equal 21.5, observe.next(timeout: WAIT).json

    event = watch.next(timeout: WAIT)
    event = watch.next(timeout: WAIT) while event.state.nil? || event.state.data.empty?
    assert_equal d, event.descriptor
    refute event.gone?
    assert_equal 21.5, event.state.json
    assert_equal :active, watch.status

    observe.close
    gone = watch.next(timeout: WAIT)
    gone = watch.next(timeout: WAIT) until gone.gone?
    assert_equal d, gone.descriptor
    assert_nil gone.state
    assert sink.wait_revoked(timeout: WAIT)
  end

  def test_object_exposer_with_tag_observer_is_live
    d = OD.new("exposed", tags: ["dash"])
    expose = @ex.expose_object(d)
    watch = @ex.observe_tag("dash")
    sink = expose.next(timeout: WAIT)
    assert sink, "object expose + tag observe should make the object live"
    sink << "x"
    ev = watch.next(timeout: WAIT)
    ev = watch.next(timeout: WAIT) until ev.state&.data == "x"
    assert_equal d, ev.descriptor
  end

  def test_synchronized_flag_changes_are_delivered
    d = OD.new("sync")
    expose = @ex.expose_object(d)
    observe = @ex.observe_object(d)
    sink = expose.next(timeout: WAIT)
    sink << "v"
    s1 = observe.next(timeout: WAIT)
    assert s1.synchronized?

    sink.desynchronize
    s2 = observe.next(timeout: WAIT)
    refute s2.synchronized?
    assert_equal s1.version, s2.version
    assert_equal "v", s2.data
    assert_equal :stale, observe.status

    sink << "w"
    s3 = observe.next(timeout: WAIT)
    assert s3.synchronized?
    assert_equal "w", s3.data
  end

  def test_latest_wins_and_versions_never_go_backwards
    d = OD.new("latest")
    expose = @ex.expose_object(d)
    observe = @ex.observe_object(d)
    sink = expose.next(timeout: WAIT)
    1000.times { |i| sink << i.to_s }
    last = observe.next(timeout: WAIT)
    assert_equal "999", last.data, "an observer sees only the newest state"
    assert_nil observe.try_next, "no backlog"

    writer = Thread.new { 1000.upto(5999) { |i| sink << i.to_s } }
    seen = []
    until seen.last == "5999"
      st = observe.next(timeout: WAIT) or flunk "writer stalled at #{seen.last}"
      seen << st.data
      assert_newer st.version, last.version
      last = st
    end
    writer.join
    assert_equal seen.map(&:to_i).sort, seen.map(&:to_i), "out of order"
  end

  def test_explicit_versions
    d = OD.new("versions")
    expose = @ex.expose_object(d)
    observe = @ex.observe_object(d)
    sink = expose.next(timeout: WAIT)
    sink.send("a", version: [1, 5], format: ["text"])
    st = observe.next(timeout: WAIT)
    assert_equal [[1, 5], ["text"], "a"], [st.version, st.format, st.data]
    sink.send(Hakuban::ObjectState.new("b", version: [1, 5])) # same version: no-op
    assert_nil observe.next(timeout: QUIET)
    e = assert_raises(Hakuban::StaleVersionError) { sink.send("c", version: [1, 4, 9]) }
    assert_match(/stale/, e.message)
    sink.send("d", version: [2])
    assert_equal [2], observe.next(timeout: WAIT).version
    assert_raises(ArgumentError) { sink.send(Hakuban::ObjectState.new("x"), version: [3]) }
    sink.send("e") # made by the library: above [2]
    assert_newer observe.next(timeout: WAIT).version, [2]
    # Outside 64 bits: refused, not wrapped into another version.
    [[2**63], [2**64 + 5], [-(2**63) - 1]].each do |v|
      assert_raises(Hakuban::InvalidArgumentError) { sink.send("f", version: v) }
    end
    sink.send("g", version: [2**63 - 1])
    assert_equal [2**63 - 1], observe.next(timeout: WAIT).version
  end

  def test_binary_data_round_trips
    d = OD.new("binary")
    expose = @ex.expose_object(d)
    observe = @ex.observe_object(d)
    sink = expose.next(timeout: WAIT)
    bytes = (0..255).to_a.pack("C*") * 4000 # ~1 MB, every byte value
    sink << bytes
    st = observe.next(timeout: WAIT)
    assert_equal Encoding::BINARY, st.data.encoding
    assert_equal bytes, st.data
    assert st.data.frozen?
    sink << ""
    assert_equal "", observe.next(timeout: WAIT).data
  end

  def test_exchange_options
    ex = exchange(name: "opts", max_descriptor_size: 100, max_tags: 2, rebalance_threshold: 0.2,
                  rebalance_interval: 0.05, max_moves_per_interval: 3, handover_timeout: 0.5)
    assert_equal "opts", ex.name
    assert_equal "opts", ex.snapshot["name"]
    assert_raises(Hakuban::DescriptorTooLargeError) { ex.observe_object("x" * 200) }
    assert_raises(Hakuban::TooManyTagsError) { ex.observe_object("x", tags: [1, 2, 3]) }
    ex.observe_object("x", tags: [1, 2]).close
    assert_raises(Hakuban::InvalidConfigError) { Hakuban::Exchange.new(handover_timeout: 0) }
    assert_raises(Hakuban::InvalidConfigError) { Hakuban::Exchange.new(rebalance_threshold: 1.5) }
    assert_raises(ArgumentError) { Hakuban::Exchange.new(bogus: 1) }
  end

  def test_snapshot_and_current
    d = OD.new({ "snap" => true }, tags: ["t"])
    expose = @ex.expose_object(d, capacity: 3)
    observe = @ex.observe_object(d)
    sink = expose.next(timeout: WAIT)
    sink.send_json([1, 2, 3])
    observe.next(timeout: WAIT)
    assert_equal [1, 2, 3], observe.current.json
    assert_equal [1, 2, 3], sink.current.json
    snap = @ex.snapshot
    assert_equal "test", snap["name"]
    obj = snap["objects"].find { |o| o["descriptor"].to_s.include?("snap") }
    assert obj, snap.inspect
    assert obj["synchronized"]
    kinds = snap["contracts"].map { |c| c["kind"] }.sort
    assert_equal 2, kinds.size, snap["contracts"].inspect
    assert(snap["contracts"].any? { |c| c["capacity"] == 3 })
  end
end
