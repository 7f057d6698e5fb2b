# frozen_string_literal: true

module Hakuban
  # An assignment: the right to write one object while this exposer is
  # elected. Given by ObjectExposeContract / TagExposeContract.
  #
  #   sink << "bytes"                        # or sink.send(ObjectState.new(...))
  #   sink.send_json({"temperature" => 21.5})
  #   sink.desynchronize                     # "what I published is stale"
  #   sink.current                           # newest state (e.g. a predecessor's)
  #
  # The exchange revokes it when nobody observes the object any more, when
  # the object moves to another exposer, or when the contract closes; a
  # write through a revoked sink raises RevokedError (fencing: a de-elected
  # exposer never overwrites its successor). #revoked?, #wait_revoked and
  # IO.select on #to_io tell when to stop producing.
  #
  # #close releases the Ruby object's handle; it does not give the object
  # up (close the contract for that).
  #
  # Note: #send is the hakuban operation (as in the other languages);
  # Object#send is still reachable as #__send__ / #public_send.
  class ObjectStateSink < Handle
    DROP = :hakuban_object_state_sink_drop # :nodoc:
    NO_FORMAT = [].freeze
    private_constant :NO_FORMAT

    # The contract that gave this assignment.
    attr_reader :contract

    def initialize(handle, contract) # :nodoc:
      # The sink keeps its contract alive: if the contract were collected,
      # its finalizer would revoke this assignment.
      @contract = contract
      init_handle(handle)
    end

    # Publishes a state as the object's newest, synchronized state. state is
    # an ObjectState, or a String of data (with format: and version:).
    # Without a version the library makes one greater than the current one.
    # Returns self. Raises RevokedError when the assignment has ended,
    # StaleVersionError for a version older than the current one.
    def send(state, format: nil, version: nil)
      s = Scratch.get
      h = handle
      sh = if state.is_a?(ObjectState)
             raise ArgumentError, "format: and version: belong to the ObjectState" if format || version

             state.to_handle(s)
           else # no ObjectState allocated for plain data
             ObjectState.new_handle(s, state.to_str, format || NO_FORMAT, version)
           end
      begin
        Error.check(Native.hakuban_object_state_sink_send(h, sh))
      ensure
        Native.hakuban_object_state_drop(sh)
      end
      self
    end

    # send(state); returns self, so sends can be chained.
    def <<(state)
      send(state)
    end

    # Publishes value as JSON (format ["JSON"]).
    def send_json(value, version: nil)
      send(ObjectState.json(value, version: version))
    end

    # Marks the object's current state as no longer synchronized (stale, no
    # new data); observers are told. The next send makes it fresh again.
    def desynchronize
      Error.check(Native.hakuban_object_state_sink_desynchronize(handle))
      self
    end

    # The object's newest state (after a failover: the predecessor's last
    # one, to continue from), or nil when it has none.
    def current
      s = Scratch.get
      rc = Error.check(Native.hakuban_object_state_sink_current(s.u64, handle))
      return nil if rc == EMPTY

      sh = s.u64.read_uint64
      begin
        ObjectState.from_handle(sh, s)
      ensure
        Native.hakuban_object_state_drop(sh)
      end
    end

    # The assignment's fencing token; tokens of one object increase with
    # every new assignment.
    def token
      s = Scratch.get
      Error.check(Native.hakuban_object_state_sink_token(s.u64, handle))
      s.u64.read_uint64
    end

    # The ObjectDescriptor of the object this sink writes.
    def descriptor
      @descriptor ||= begin
        s = Scratch.get
        Error.check(Native.hakuban_object_state_sink_descriptor(s.u64, handle))
        dh = s.u64.read_uint64
        begin
          ObjectDescriptor.from_handle(dh)
        ensure
          Native.hakuban_object_descriptor_drop(dh)
        end
      end
    end

    # Whether the assignment has ended (stop producing). A closed sink
    # counts as revoked.
    def revoked?
      h = @cell.first
      return true if h.nil?

      rc = Native.hakuban_object_state_sink_try_next(h)
      return true if rc == END_ || (rc.negative? && closed?)

      Error.check(rc)
      false
    end

    # Waits until the assignment ends: true when it did, false when timeout
    # (seconds; nil or Float::INFINITY: no limit; 0 or negative: do not
    # wait) expired. Raises InvalidArgumentError for a NaN timeout. Waits in
    # slices without the GVL, like Stream#next.
    def wait_revoked(timeout: nil)
      timeout = Hakuban.timeout_seconds(timeout)
      return true if revoked?
      return false if timeout&.zero?

      deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        slice = Native::WAIT_SLICE_MS
        if deadline
          left = ((deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)) * 1000).ceil
          return false if left <= 0

          slice = left if left < slice
        end
        h = @cell.first
        return true if h.nil?

        rc = Native.hakuban_object_state_sink_next(h, slice)
        return true if rc == END_ || (rc.negative? && closed?)

        Error.check(rc)
      end
    end

    # An IO readable once the assignment has ended (for IO.select). Owned by
    # the sink like Stream#to_io.
    def to_io
      readiness_io
    end

    private

    def native_fd(out, h) = Native.hakuban_object_state_sink_fd(out, h)

    def before_close
      close_readiness_io
    end

    def inspect_details
      closed? ? "" : " token=#{token}"
    end
  end
end
