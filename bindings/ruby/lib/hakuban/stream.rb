# frozen_string_literal: true

module Hakuban
  # Stream is what the four contracts share: receiving with #next,
  # #try_next and #each, and waiting with IO.select on #to_io.
  #
  # Waiting never holds the GVL: the library's _next functions are attached
  # with blocking: true, and they are called with a timeout of at most
  # 100 ms, in a loop, so Interrupt (Ctrl-C), Thread#raise and Thread#kill
  # reach a waiting thread within about 0.1 s.
  #
  # The end of the stream (the contract was closed, here or from another
  # thread, or its exchange was closed) ends #each and makes #next and
  # #try_next raise StopIteration, like Enumerator#next (so Kernel#loop ends
  # quietly).
  module Stream
    include Enumerable

    # Marker returned by #receive at the end of the stream.
    ENDED = Object.new.freeze
    private_constant :ENDED

    # Waits for the next item and returns it: an ObjectState, an
    # ObjectStateSink or an ObjectEvent, depending on the contract. timeout
    # is in seconds (nil or Float::INFINITY: no limit; 0 or negative: do
    # not wait); returns nil when it expires. Raises StopIteration at the
    # end of the stream, ClosedError if the contract was closed before the
    # call, InvalidArgumentError for a NaN timeout.
    def next(timeout: nil)
      item = receive(Hakuban.timeout_seconds(timeout))
      raise StopIteration, "the #{self.class.name.split("::").last} has ended" if ENDED.equal?(item)

      item
    end

    # The next item if one is pending, else nil; never waits. Raises
    # StopIteration at the end of the stream.
    def try_next
      item = receive(0)
      raise StopIteration, "the #{self.class.name.split("::").last} has ended" if ENDED.equal?(item)

      item
    end

    # Yields every item until the stream ends, then returns self. Without a
    # block, returns an Enumerator.
    def each
      return enum_for(:each) unless block_given?

      handle # ClosedError if it was closed before the call
      loop do
        # Closed (by another thread) while the block ran: that ends it too.
        item = receive(nil, closed_ends: true)
        break if ENDED.equal?(item)

        yield item
      end
      self
    end

    # Whether the stream has ended: the contract was closed (also by its
    # exchange). Does not take anything.
    def ended?
      closed? || status == :closed
    end

    # An IO for the contract's readiness file descriptor, for IO.select: it
    # is readable while something is pending or the stream has ended. It
    # stops being readable only when a #try_next / #next finds nothing, so
    # after it selects readable, call #try_next until it returns nil:
    #
    #   loop do
    #     IO.select([contract])
    #     while (state = contract.try_next) ... end
    #   end
    #
    # The fd belongs to the contract: do not read it or close it; it is
    # closed with the contract (the IO keeps the contract alive).
    def to_io
      readiness_io
    end

    private

    def before_close
      close_readiness_io
    end

    # The next item, nil on timeout (seconds, as Hakuban.timeout_seconds
    # returns it: 0 = do not wait, nil = forever, else positive and finite)
    # or ENDED.
    # closed_ends: a contract closed before the call is ENDED too (instead of
    # ClosedError).
    def receive(timeout, closed_ends: false)
      s = Scratch.get
      h = closed_ends ? @cell.first : handle
      return ENDED if h.nil?

      rc = native_try_next(s, h)
      return take(s) if rc == OK
      return ENDED if rc == END_
      return ended_or_raise(rc) if rc.negative?
      return nil if timeout&.zero?

      deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        slice = Native::WAIT_SLICE_MS
        if deadline
          left = ((deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)) * 1000).ceil
          return nil if left <= 0

          slice = left if left < slice
        end
        # Another thread may have closed us between slices.
        h = @cell.first
        return ENDED if h.nil?

        rc = native_next(s, h, slice)
        return take(s) if rc == OK
        return ENDED if rc == END_
        return ended_or_raise(rc) if rc.negative?
      end
    end

    # A negative result: a handle dropped by a concurrent #close ends the
    # stream; anything else is raised.
    def ended_or_raise(rc)
      return ENDED if rc == RESULT_CODES[:HAKUBAN_ERR_INVALID_HANDLE] && closed?

      Error.check(rc)
    end

    def status_of(rc_status)
      STATUSES.fetch(rc_status, :unknown)
    end
  end

  # Contract statuses by the value of enum hakuban_status (index = value):
  # why states or assignments are (not) arriving.
  STATUSES = %i[active waiting_for_exposer no_observers standby stale idle closed refused].freeze
end
