# frozen_string_literal: true

module Hakuban
  # Scratch holds the out-parameters of C calls. One per fiber (so per
  # thread): a call's outputs are read right after it returns, and another
  # thread may run in between, so the buffers cannot be shared. Allocating
  # FFI memory per call would cost more than the call itself.
  class Scratch # :nodoc:
    attr_reader :u64, :ptr, :len, :i32, :i64, :bool, :event, :buf

    # Received data up to this size is copied into buf first (one library
    # call); larger data gets a String of its own size.
    BUF_SIZE = 4096

    def self.get
      Thread.current[:__hakuban_scratch] ||= new
    end

    # A struct hakuban_connector_status_info (made on first use).
    def connector_status
      @connector_status ||= Native::ConnectorStatusInfo.new
    end

    def initialize
      @u64 = FFI::MemoryPointer.new(:uint64)
      @ptr = FFI::MemoryPointer.new(:pointer)
      @len = FFI::MemoryPointer.new(:size_t)
      @i32 = FFI::MemoryPointer.new(:int32)
      @i64 = FFI::MemoryPointer.new(:int64)
      @bool = FFI::MemoryPointer.new(:bool)
      @event = Native::ObjectEvent.new
      @buf = FFI::MemoryPointer.new(BUF_SIZE)
    end
  end

  # Handle is the base of every Ruby object that owns a library handle
  # (exchange, contracts, sinks): #close / #closed?, a finalizer as the
  # safety net, and the block form.
  #
  # The handle lives in a one-element Array (the "cell") shared with the
  # finalizer. Array#shift takes it out atomically (under the GVL), so of
  # close, a concurrent close and the finalizer exactly one drops it. The
  # finalizer is built in a class method and captures only the cell, never
  # self (a finalizer that references its object keeps it alive forever).
  #
  # Making the readiness IO (#to_io) takes several steps (a library call,
  # IO.for_fd), so the cell's trick does not cover it: the object's
  # @io_lock Mutex does (see #readiness_io).
  class Handle
    # Makes the object and, with a block, yields it and closes it when the
    # block ends (also on an exception), returning the block's value.
    def self.open(*args, **kwargs)
      obj = new(*args, **kwargs)
      return obj unless block_given?

      begin
        yield obj
      ensure
        obj.close
      end
    end

    # The finalizer of a handle in cell, dropped with Native.<drop>. It does
    # nothing in a forked child (the library cannot be called there) and
    # after #close.
    def self.finalizer(cell, drop)
      proc do
        h = cell.shift
        Native.__send__(drop, h) if h && Native.usable?
      end
    end
    private_class_method :finalizer

    # Releases the library handle (and everything the library holds for
    # it). Idempotent; later uses of the object raise ClosedError. Returns
    # nil.
    def close
      before_close
      h = @cell.shift
      Native.__send__(self.class::DROP, h) if h && Native.usable?
      nil
    end

    # Whether #close was called.
    def closed?
      @cell.empty?
    end

    def inspect
      "#<#{self.class.name}#{closed? ? " (closed)" : ""}#{inspect_details}>"
    end

    # The raw library handle (an Integer). Raises ClosedError after #close.
    def handle
      @cell.first || raise(handle_closed_error)
    end

    private

    def init_handle(handle)
      @cell = [handle]
      @io = nil
      @io_closed = false
      @io_lock = Mutex.new
      ObjectSpace.define_finalizer(self, Handle.__send__(:finalizer, @cell, self.class::DROP))
    end

    def handle_closed_error
      ClosedError.new("#{self.class.name.split("::").last} is closed", code: RESULT_CODES[:HAKUBAN_ERR_CLOSED])
    end

    def before_close; end

    # The IO of a #to_io: wraps the library's readiness fd, which the
    # class's native_fd(out, handle) asks for, once. The fd belongs to the
    # handle (the library closes it with the handle), so the IO never closes
    # it; close_readiness_io closes the IO before the handle is dropped.
    #
    # @io_lock makes it one IO however many threads ask at once (a bare
    # `@io ||=` would let two of them each make one, and lose one), and
    # orders it with close_readiness_io: once that has run, no new IO is
    # made for a handle about to be dropped (its fd about to be closed).
    def readiness_io
      @io_lock.synchronize do
        @io ||= begin
          raise handle_closed_error if @io_closed

          s = Scratch.get
          Error.check(native_fd(s.i32, handle))
          io = IO.for_fd(s.i32.read_int32, "r", autoclose: false)
          io.instance_variable_set(:@hakuban_owner, self)
          io
        end
      end
    end

    # Closes the IO (if one was made) and refuses to make another; #close
    # calls it (via before_close) before dropping the handle.
    def close_readiness_io
      io = begin
        @io_lock.synchronize { take_readiness_io }
      rescue ThreadError # #close in a trap handler, where no Mutex can be locked
        take_readiness_io
      end
      io&.close
    end

    def take_readiness_io
      @io_closed = true
      io = @io
      @io = nil
      io
    end

    def inspect_details
      ""
    end
  end
end
