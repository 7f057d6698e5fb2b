# frozen_string_literal: true

require "json"

module Hakuban
  # One value of an object: data (bytes the library never interprets),
  # format (a stack of encoding names, innermost first, e.g. ["JSON"]),
  # version (Integers compared lexicographically, or nil: "make one for me")
  # and synchronized? (whether it is the current truth from a live exposer).
  #
  # States are plain Ruby values: a received state is read out of the
  # library at once (its handle is dropped before the caller sees it), so
  # states need no closing and can be kept, shared between threads and
  # compared.
  #
  #   Hakuban::ObjectState.new("raw bytes")
  #   Hakuban::ObjectState.new(bytes, format: ["zstd"], version: [1, 5])
  #   Hakuban::ObjectState.json({"temperature" => 21.5})
  class ObjectState
    # The bytes: a frozen String (binary for received states; a state you
    # make keeps the encoding of the String you gave).
    attr_reader :data
    # The format stack (frozen Array of Strings), innermost encoding first.
    attr_reader :format
    # The version (frozen Array of Integers), or nil for a state made
    # without one.
    attr_reader :version

    JSON_FORMAT = ["JSON"].freeze
    NO_FORMAT = [].freeze
    EMPTY_DATA = "".b.freeze
    INT64_MIN = -(2**63)
    INT64_MAX = 2**63 - 1
    private_constant :JSON_FORMAT, :NO_FORMAT, :EMPTY_DATA, :INT64_MIN, :INT64_MAX

    # A state to send. data is a String (sent as its bytes); format an Array
    # of Strings; version an Array of Integers (64-bit) or nil, in which case
    # the sink makes a version greater than the object's current one.
    #
    # The state keeps frozen copies of data and of the format's Strings (a
    # String that is already frozen is kept as is), so changing the caller's
    # Strings afterwards does not change the state.
    def initialize(data = EMPTY_DATA, format: NO_FORMAT, version: nil)
      data = data.to_str
      @data = data.frozen? ? data : data.dup.freeze
      @format = ObjectState.frozen_format(format)
      @version = version.nil? || version.frozen? ? version : version.map(&:to_int).freeze
      @synchronized = false
      @unsynchronized_ms = 0
      @received_at = nil
    end

    # A state whose data is value as JSON and whose format is ["JSON"]
    # (the JSON helper).
    def self.json(value, version: nil)
      new(JSON.generate(value), format: JSON_FORMAT, version: version)
    end

    # The data parsed as JSON (frozen). Raises WrongFormatError unless the
    # outermost format is "JSON".
    def json
      if @format.last != "JSON"
        raise WrongFormatError.new("the state's format is #{@format.inspect}, not \"JSON\" on top",
                                   code: RESULT_CODES[:HAKUBAN_ERR_WRONG_FORMAT])
      end
      @json ||= JSON.parse(@data, freeze: true)
    end

    # Whether this is the current truth from a live exposer. States you make
    # are not (the sink marks what it publishes synchronized).
    def synchronized?
      @synchronized
    end

    # For a not synchronized state: how many seconds ago it last was
    # synchronized (a Float), measured now: it grows while you hold the
    # state. 0.0 for a synchronized state or when unknown.
    def unsynchronized_age
      return 0.0 if @synchronized || @received_at.nil?

      @unsynchronized_ms / 1000.0 + (Process.clock_gettime(Process::CLOCK_MONOTONIC) - @received_at)
    end

    # States are equal when data, format, version and synchronized? are.
    def ==(other)
      other.is_a?(ObjectState) && other.version == @version && other.synchronized? == @synchronized &&
        other.format == @format && other.data == @data
    end
    alias eql? ==

    def hash
      [@version, @format, @data, @synchronized].hash
    end

    def inspect
      "#<Hakuban::ObjectState version=#{@version.inspect} format=#{@format.inspect} " \
        "#{@data.bytesize}B #{@synchronized ? "synchronized" : "unsynchronized"}>"
    end

    # Reads state handle h (not dropped here) into a new ObjectState.
    #
    # This is the receive path, so it is written for speed: the data is
    # copied in one call into the scratch buffer (or, when larger, straight
    # into a String of the right size), size_t outputs are read as uint64
    # (Native checks size_t is 64-bit), and strings and arrays the library
    # owns are read through Native::MEM without allocating Pointer objects.
    def self.from_handle(h, s) # :nodoc:
      rc = Native.hakuban_object_state_data_copy(s.buf, Scratch::BUF_SIZE, s.len, h)
      n = s.len.read_uint64
      if rc == OK
        data = n.zero? ? EMPTY_DATA : s.buf.read_bytes(n).freeze
      elsif rc == RESULT_CODES[:HAKUBAN_ERR_BUFFER_TOO_SMALL]
        data = "\0".b * n # one copy, straight into the Ruby string's memory
        Error.check(Native.hakuban_object_state_data_copy(data, n, s.len, h))
        data.freeze
      else
        Error.check(rc)
      end
      Error.check(Native.hakuban_object_state_version(s.ptr, s.len, h))
      vn = s.len.read_uint64
      version = vn.zero? ? nil : Native::MEM.get_array_of_int64(s.ptr.read_uint64 - 1, vn).freeze
      Error.check(Native.hakuban_object_state_format_count(s.len, h))
      format = read_format(h, s, s.len.read_uint64)
      Error.check(Native.hakuban_object_state_synchronized(s.bool, h))
      st = allocate
      st.__send__(:init_received, data, format, version, s.bool.get_uint8(0) != 0, s, h)
      st
    end

    def self.read_format(h, s, count) # :nodoc:
      return NO_FORMAT if count.zero?

      Error.check(Native.hakuban_object_state_format(s.ptr, h, 0))
      first = Native::MEM.get_string(s.ptr.read_uint64 - 1)
      return JSON_FORMAT if count == 1 && first == "JSON"

      fmt = [-first.force_encoding(Encoding::UTF_8)]
      (1...count).each do |i|
        Error.check(Native.hakuban_object_state_format(s.ptr, h, i))
        fmt << -Native::MEM.get_string(s.ptr.read_uint64 - 1).force_encoding(Encoding::UTF_8)
      end
      fmt.freeze
    end

    # format (an Array of Strings) as a frozen Array of frozen Strings:
    # format itself when it already is one, else a copy (format names are
    # few and short: they are deduplicated with String#-@).
    def self.frozen_format(format) # :nodoc:
      return format if format.frozen? && format.all? { |f| f.is_a?(String) && f.frozen? }

      format.map { |f| -f.to_str }.freeze
    end

    # Format stacks as C arrays, made once per distinct stack (there are
    # few): [pointer array, the strings it points to]. Keyed by frozen
    # Arrays of frozen Strings only: a key whose Strings the caller could
    # change would change its hash inside the Hash.
    FORMAT_CACHE = {} # :nodoc:
    FORMAT_CACHE_MAX = 256 # :nodoc:

    def self.format_pointer(format) # :nodoc:
      cached = FORMAT_CACHE[format]
      return cached[0] if cached

      format = frozen_format(format)
      strs = format.map { |f| FFI::MemoryPointer.from_string(f) }
      ptr = FFI::MemoryPointer.new(:pointer, strs.size)
      ptr.write_array_of_pointer(strs)
      FORMAT_CACHE[format] = [ptr, strs] if FORMAT_CACHE.size < FORMAT_CACHE_MAX
      # Uncached: the strings must outlive the call; the caller holds ptr
      # only, so keep them reachable from it.
      ptr.instance_variable_set(:@strs, strs)
      ptr
    end

    # Makes a library state handle of this state (the caller drops it).
    def to_handle(s) # :nodoc:
      ObjectState.new_handle(s, @data, @format, @version)
    end

    # A library state handle of data, format and version (the caller drops
    # it); Sink#send calls it directly for plain Strings.
    def self.new_handle(s, data, format, version) # :nodoc:
      fmt = format.empty? ? nil : format_pointer(format)
      if version&.any? { |v| v < INT64_MIN || v > INT64_MAX }
        # pack("q*") would wrap it silently into another version.
        raise InvalidArgumentError.new("version #{version} has an element outside 64-bit signed integers",
                                       code: RESULT_CODES[:HAKUBAN_ERR_INVALID_ARGUMENT])
      end
      ver = version && version.pack("q*")
      Error.check(Native.hakuban_object_state_new(s.u64, ver, version ? version.size : 0,
                                                  fmt, format.size, data, data.bytesize))
      s.u64.read_uint64
    end

    private

    def init_received(data, format, version, synchronized, s, h)
      @data = data
      @format = format
      @version = version
      @synchronized = synchronized
      @unsynchronized_ms = 0
      @received_at = nil
      return if synchronized

      Error.check(Native.hakuban_object_state_unsynchronized_ms(s.i64, h))
      @unsynchronized_ms = s.i64.read_int64
      @received_at = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
