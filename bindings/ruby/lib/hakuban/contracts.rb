# frozen_string_literal: true

module Hakuban
  # "I want this object": makes the object live and receives its newest
  # ObjectState whenever it changes (new data, or only its synchronized?
  # flag). At most one state is pending: a slow reader skips versions, and
  # versions never go backwards.
  #
  #   exchange.observe_object({"sensor" => 7}) do |contract|
  #     contract.each { |state| p state.json }
  #   end
  class ObjectObserveContract < Handle
    include Stream

    DROP = :hakuban_object_observe_contract_drop # :nodoc:

    # The observed object's ObjectDescriptor.
    attr_reader :descriptor
    # The Exchange the contract was made on.
    attr_reader :exchange

    # Makes the contract on exchange. descriptor is an ObjectDescriptor or a
    # value (with tags:). With a block (ObjectObserveContract.open), yields
    # the contract and closes it when the block ends.
    def initialize(exchange, descriptor, tags: nil)
      @descriptor = ObjectDescriptor.coerce(descriptor, tags)
      @exchange = exchange
      s = Scratch.get
      @descriptor.with_handle do |dh|
        Error.check(Native.hakuban_object_observe_contract_new(s.u64, exchange.handle, dh))
      end
      init_handle(s.u64.read_uint64)
    end

    # The object's newest state without consuming it, or nil when it has
    # none yet.
    def current
      s = Scratch.get
      rc = Error.check(Native.hakuban_object_observe_contract_current(s.u64, handle))
      return nil if rc == EMPTY

      take(s)
    end

    # Why states are (not) arriving: :active, :waiting_for_exposer, :stale
    # or :closed.
    def status
      return :closed if closed?

      s = Scratch.get
      Error.check(Native.hakuban_object_observe_contract_status(s.i32, handle))
      status_of(s.i32.read_int32)
    end

    # Runs the block on the newest state, in its own thread, and abandons it
    # (Thread#kill, so ensure clauses run) as soon as a newer state arrives,
    # then runs it on that one: for work that is pointless once its input is
    # outdated (in the spirit of the original gem's for_each_till_next).
    # Returns when the contract ends (a running block is then abandoned too).
    # An exception in the block is raised here.
    def for_each_till_next(&block)
      raise ArgumentError, "for_each_till_next needs a block" unless block

      Hakuban.till_next(self, &block)
    end

    private

    def native_try_next(s, h) = Native.hakuban_object_observe_contract_try_next(s.u64, h)
    def native_next(s, h, ms) = Native.hakuban_object_observe_contract_next(s.u64, h, ms)
    def native_fd(out, h) = Native.hakuban_object_observe_contract_fd(out, h)

    def take(s)
      sh = s.u64.read_uint64
      begin
        ObjectState.from_handle(sh, s)
      ensure
        Native.hakuban_object_state_drop(sh)
      end
    end

    def inspect_details
      " #{@descriptor.inspect}"
    end
  end

  # "I can produce this object": yields an ObjectStateSink only while this
  # contract is elected and somebody observes the object (lazy exposing), so
  # nothing is produced that nobody wants.
  #
  #   exchange.expose_object({"sensor" => 7}) do |contract|
  #     contract.each { |sink| sink << read_sensor until sink.revoked? }
  #   end
  class ObjectExposeContract < Handle
    include Stream

    DROP = :hakuban_object_expose_contract_drop # :nodoc:

    # The exposed object's ObjectDescriptor.
    attr_reader :descriptor
    # How many objects this exposer can carry (weighs elections).
    attr_reader :capacity
    # The Exchange the contract was made on.
    attr_reader :exchange

    # Makes the contract on exchange. descriptor is an ObjectDescriptor or a
    # value (with tags:); capacity an Integer in 1..2**30.
    def initialize(exchange, descriptor, tags: nil, capacity: 1)
      @descriptor = ObjectDescriptor.coerce(descriptor, tags)
      @exchange = exchange
      @capacity = capacity
      s = Scratch.get
      @descriptor.with_handle do |dh|
        Error.check(Native.hakuban_object_expose_contract_new(s.u64, exchange.handle, dh, Hakuban.capacity(capacity)))
      end
      init_handle(s.u64.read_uint64)
    end

    # :active while elected, :standby while another exposer is, :no_observers,
    # :closed.
    def status
      return :closed if closed?

      s = Scratch.get
      Error.check(Native.hakuban_object_expose_contract_status(s.i32, handle))
      status_of(s.i32.read_int32)
    end

    # Runs the block with each assignment (sink) in its own thread, and
    # abandons it (Thread#kill) when the sink is revoked; the sink is closed
    # afterwards. Returns when the contract ends. An exception in a block is
    # raised here.
    def for_each_till_revoked(&block)
      raise ArgumentError, "for_each_till_revoked needs a block" unless block

      Hakuban.till_revoked(self, &block)
    end

    private

    def native_try_next(s, h) = Native.hakuban_object_expose_contract_try_next(s.u64, h)
    def native_next(s, h, ms) = Native.hakuban_object_expose_contract_next(s.u64, h, ms)
    def native_fd(out, h) = Native.hakuban_object_expose_contract_fd(out, h)

    def take(s)
      ObjectStateSink.new(s.u64.read_uint64, self)
    end

    def inspect_details
      " #{@descriptor.inspect} capacity=#{@capacity}"
    end
  end

  # What a TagObserveContract delivers: the newest state of one object
  # carrying the tag, or that object's disappearance (gone?).
  class ObjectEvent
    # The object's ObjectDescriptor.
    attr_reader :descriptor
    # The object's newest ObjectState; nil when gone?.
    attr_reader :state

    def initialize(descriptor, state, gone)
      @descriptor = descriptor
      @state = state
      @gone = gone
      freeze
    end

    # The object is no longer live: no more events for it follow unless it
    # becomes live again.
    def gone?
      @gone
    end

    def inspect
      "#<Hakuban::ObjectEvent #{@descriptor.inspect} #{@gone ? "gone" : @state.inspect}>"
    end
  end

  # "I want every live object with this tag": an ObjectEvent per state
  # change and per disappearance of each such object. Never makes an object
  # live by itself. At most one event per object is pending.
  class TagObserveContract < Handle
    include Stream

    DROP = :hakuban_tag_observe_contract_drop # :nodoc:
    DESCRIPTOR_CACHE_MAX = 65_536 # :nodoc:

    # The observed TagDescriptor.
    attr_reader :tag
    # The Exchange the contract was made on.
    attr_reader :exchange

    def initialize(exchange, tag)
      @tag = TagDescriptor.coerce(tag)
      @exchange = exchange
      # Descriptors of the live objects, by key: an event then costs one
      # library call for its descriptor instead of 3 + tags.
      @descriptors = {}
      s = Scratch.get
      @tag.with_handle do |th|
        Error.check(Native.hakuban_tag_observe_contract_new(s.u64, exchange.handle, th))
      end
      init_handle(s.u64.read_uint64)
    end

    # :active while some object with the tag is live, :idle, :closed.
    def status
      return :closed if closed?

      s = Scratch.get
      Error.check(Native.hakuban_tag_observe_contract_status(s.i32, handle))
      status_of(s.i32.read_int32)
    end

    private

    def native_try_next(s, h) = Native.hakuban_tag_observe_contract_try_next(s.event.to_ptr, h)
    def native_next(s, h, ms) = Native.hakuban_tag_observe_contract_next(s.event.to_ptr, h, ms)
    def native_fd(out, h) = Native.hakuban_tag_observe_contract_fd(out, h)

    def take(s)
      ev = s.event
      dh = ev[:descriptor]
      sh = ev[:state]
      gone = ev[:gone]
      begin
        key = ObjectDescriptor.key_of(dh, s)
        descriptor = gone ? @descriptors.delete(key) : @descriptors[key]
        descriptor ||= ObjectDescriptor.from_handle(dh)
        unless gone
          # Bounded: with several threads receiving, a gone event can be
          # taken before an older state event re-adds its entry.
          @descriptors.clear if @descriptors.size >= DESCRIPTOR_CACHE_MAX
          @descriptors[key] = descriptor
        end
        state = gone ? nil : ObjectState.from_handle(sh, s)
        ObjectEvent.new(descriptor, state, gone)
      ensure
        Native.hakuban_object_descriptor_drop(dh)
        Native.hakuban_object_state_drop(sh)
      end
    end

    def inspect_details
      " #{@tag.inspect}"
    end
  end

  # "I can produce any object with this tag": one ObjectStateSink per
  # object it is elected for. Offered only objects an object observer asks
  # for by full descriptor.
  class TagExposeContract < Handle
    include Stream

    DROP = :hakuban_tag_expose_contract_drop # :nodoc:

    # The exposed TagDescriptor.
    attr_reader :tag
    # How many objects this exposer can carry (weighs elections).
    attr_reader :capacity
    # The Exchange the contract was made on.
    attr_reader :exchange

    def initialize(exchange, tag, capacity: 1)
      @tag = TagDescriptor.coerce(tag)
      @exchange = exchange
      @capacity = capacity
      s = Scratch.get
      @tag.with_handle do |th|
        Error.check(Native.hakuban_tag_expose_contract_new(s.u64, exchange.handle, th, Hakuban.capacity(capacity)))
      end
      init_handle(s.u64.read_uint64)
    end

    # :active while elected for some object, :no_observers, :closed.
    def status
      return :closed if closed?

      s = Scratch.get
      Error.check(Native.hakuban_tag_expose_contract_status(s.i32, handle))
      status_of(s.i32.read_int32)
    end

    # As ObjectExposeContract#for_each_till_revoked: one thread per
    # assignment, each abandoned when its sink is revoked.
    def for_each_till_revoked(&block)
      raise ArgumentError, "for_each_till_revoked needs a block" unless block

      Hakuban.till_revoked(self, &block)
    end

    private

    def native_try_next(s, h) = Native.hakuban_tag_expose_contract_try_next(s.u64, h)
    def native_next(s, h, ms) = Native.hakuban_tag_expose_contract_next(s.u64, h, ms)
    def native_fd(out, h) = Native.hakuban_tag_expose_contract_fd(out, h)

    def take(s)
      ObjectStateSink.new(s.u64.read_uint64, self)
    end

    def inspect_details
      " #{@tag.inspect} capacity=#{@capacity}"
    end
  end

  # A capacity as the C API takes it, or InvalidCapacityError.
  def self.capacity(capacity) # :nodoc:
    unless capacity.is_a?(Integer) && capacity.between?(1, 2**30)
      raise InvalidCapacityError.new("capacity must be an Integer in 1..2**30, not #{capacity.inspect}",
                                     code: RESULT_CODES[:HAKUBAN_ERR_INVALID_CAPACITY])
    end
    capacity
  end
end
