# frozen_string_literal: true

require "ffi"

module Hakuban
  # Native is the raw C interface of libhakuban (include/hakuban.h), one
  # module function per C function. Nothing in here is public API: use the
  # classes of Hakuban instead.
  #
  # The library is loaded lazily, on the first call of any of these
  # functions, not at require time: loading it starts the Go runtime (a few
  # threads, ~2 ms), and a process that forks before that keeps a usable
  # library in the child. Until then every function is a stub that loads the
  # library and attaches the real functions (attach_function replaces the
  # stub, so once loaded a call costs nothing extra).
  #
  # After a fork in a process that had loaded the library, the child cannot
  # use it (the Go runtime's threads do not survive fork(): the child would
  # hang). The Process._fork hook below replaces every function in the child
  # by one raising ForkError, and the finalizers check Native.usable? so that
  # the child's exit does not hang either.
  module Native
    extend FFI::Library

    # Options of hakuban_exchange_new (struct hakuban_exchange_options).
    class ExchangeOptions < FFI::Struct
      layout :name, :pointer,
             :max_descriptor_size, :size_t,
             :max_tags, :size_t,
             :rebalance_threshold, :double,
             :rebalance_interval_ms, :int64,
             :max_moves_per_interval, :int32,
             :handover_timeout_ms, :int64
    end

    # What a tag observe contract delivers (struct hakuban_object_event).
    class ObjectEvent < FFI::Struct
      layout :descriptor, :uint64,
             :state, :uint64,
             :gone, :bool
    end

    # Options of hakuban_connector_new (struct hakuban_connector_options).
    class ConnectorOptions < FFI::Struct
      layout :name, :pointer,
             :token, :pointer,
             :token_len, :size_t,
             :min_backoff_ms, :int64,
             :max_backoff_ms, :int64,
             :ping_interval_ms, :int64,
             :ping_timeout_ms, :int64,
             :tls_ca_file, :pointer,
             :tls_cert_file, :pointer,
             :tls_key_file, :pointer
    end

    # A connector's status (struct hakuban_connector_status_info).
    class ConnectorStatusInfo < FFI::Struct
      layout :state, :int32,
             :connects, :uint64,
             :failures, :uint64
    end

    # Options of hakuban_listener_new (struct hakuban_listener_options).
    class ListenerOptions < FFI::Struct
      layout :address, :pointer,
             :path, :pointer,
             :tls_cert_file, :pointer,
             :tls_key_file, :pointer,
             :tls_client_ca_file, :pointer,
             :ping_interval_ms, :int64,
             :ping_timeout_ms, :int64
    end

    # The Integers each C integer type of the structs above holds, by its
    # FFI type (size_t is ULONG; attach_all checks that it has 64 bits).
    # ffi itself raises a bare RangeError for a too large value, but wraps
    # a negative one into a huge unsigned one and truncates a Float, so the
    # options are checked against these first (Hakuban.option_int).
    INT_RANGES = {
      FFI::Type::INT32 => -(2**31)..(2**31 - 1),
      FFI::Type::UINT32 => 0..(2**32 - 1),
      FFI::Type::INT64 => -(2**63)..(2**63 - 1),
      FFI::Type::UINT64 => 0..(2**64 - 1),
      FFI::Type::ULONG => 0..(2**(8 * FFI::Type::ULONG.size) - 1)
    }.freeze
    INT64_RANGE = INT_RANGES.fetch(FFI::Type::INT64)

    # The Integers field of struct (an FFI::Struct) holds.
    def self.field_range(struct, field)
      INT_RANGES.fetch(struct.layout[field].type)
    end

    H = :uint64 # every handle type is a uint64_t
    P = :pointer

    # name => [parameter types, return type, blocking]. The functions that
    # wait (the _next functions, hakuban_connector_wait) are attached with
    # blocking: true (the GVL is released while they run) and are always
    # called with a timeout of at most WAIT_SLICE_MS, so Interrupt and
    # Thread#raise get through. The connector's and listener's drop (a
    # graceful WebSocket close, up to ~2 s) and hakuban_listener_new (binds
    # a port) release the GVL too.
    FUNCTIONS = {
      hakuban_version: [[], :string],
      hakuban_abi_version: [[], :uint32],
      hakuban_last_error_message: [[], :string],
      hakuban_string_free: [[P], :void],
      hakuban_log_set_level: [[:int32], :int32],

      hakuban_exchange_options_init: [[P], :void],
      hakuban_exchange_new: [[P, P], :int32],
      hakuban_exchange_drop: [[H], :int32],
      hakuban_exchange_snapshot: [[P, H], :int32],

      hakuban_tag_descriptor_new: [[P, :string], :int32],
      hakuban_tag_descriptor_json: [[P, H], :int32],
      hakuban_tag_descriptor_drop: [[H], :int32],
      hakuban_object_descriptor_new: [[P, :string, P, :size_t], :int32],
      hakuban_object_descriptor_json: [[P, H], :int32],
      hakuban_object_descriptor_key: [[P, H], :int32],
      hakuban_object_descriptor_tag_count: [[P, H], :int32],
      hakuban_object_descriptor_tag_json: [[P, H, :size_t], :int32],
      hakuban_object_descriptor_drop: [[H], :int32],

      hakuban_object_state_new: [[P, :buffer_in, :size_t, P, :size_t, :buffer_in, :size_t], :int32],
      hakuban_object_state_version: [[P, P, H], :int32],
      hakuban_object_state_format_count: [[P, H], :int32],
      hakuban_object_state_format: [[P, H, :size_t], :int32],
      hakuban_object_state_data_len: [[P, H], :int32],
      hakuban_object_state_data_copy: [[:buffer_out, :size_t, P, H], :int32],
      hakuban_object_state_synchronized: [[P, H], :int32],
      hakuban_object_state_unsynchronized_ms: [[P, H], :int32],
      hakuban_object_state_drop: [[H], :int32],

      hakuban_object_observe_contract_new: [[P, H, H], :int32],
      hakuban_object_observe_contract_try_next: [[P, H], :int32],
      hakuban_object_observe_contract_next: [[P, H, :int64], :int32, true],
      hakuban_object_observe_contract_fd: [[P, H], :int32],
      hakuban_object_observe_contract_current: [[P, H], :int32],
      hakuban_object_observe_contract_status: [[P, H], :int32],
      hakuban_object_observe_contract_close: [[H], :int32],
      hakuban_object_observe_contract_drop: [[H], :int32],

      hakuban_object_expose_contract_new: [[P, H, H, :uint32], :int32],
      hakuban_object_expose_contract_try_next: [[P, H], :int32],
      hakuban_object_expose_contract_next: [[P, H, :int64], :int32, true],
      hakuban_object_expose_contract_fd: [[P, H], :int32],
      hakuban_object_expose_contract_status: [[P, H], :int32],
      hakuban_object_expose_contract_close: [[H], :int32],
      hakuban_object_expose_contract_drop: [[H], :int32],

      hakuban_tag_observe_contract_new: [[P, H, H], :int32],
      hakuban_tag_observe_contract_try_next: [[P, H], :int32],
      hakuban_tag_observe_contract_next: [[P, H, :int64], :int32, true],
      hakuban_tag_observe_contract_fd: [[P, H], :int32],
      hakuban_tag_observe_contract_status: [[P, H], :int32],
      hakuban_tag_observe_contract_close: [[H], :int32],
      hakuban_tag_observe_contract_drop: [[H], :int32],

      hakuban_tag_expose_contract_new: [[P, H, H, :uint32], :int32],
      hakuban_tag_expose_contract_try_next: [[P, H], :int32],
      hakuban_tag_expose_contract_next: [[P, H, :int64], :int32, true],
      hakuban_tag_expose_contract_fd: [[P, H], :int32],
      hakuban_tag_expose_contract_status: [[P, H], :int32],
      hakuban_tag_expose_contract_close: [[H], :int32],
      hakuban_tag_expose_contract_drop: [[H], :int32],

      hakuban_object_state_sink_send: [[H, H], :int32],
      hakuban_object_state_sink_desynchronize: [[H], :int32],
      hakuban_object_state_sink_current: [[P, H], :int32],
      hakuban_object_state_sink_token: [[P, H], :int32],
      hakuban_object_state_sink_descriptor: [[P, H], :int32],
      hakuban_object_state_sink_try_next: [[H], :int32],
      hakuban_object_state_sink_next: [[H, :int64], :int32, true],
      hakuban_object_state_sink_fd: [[P, H], :int32],
      hakuban_object_state_sink_drop: [[H], :int32],

      hakuban_connector_options_init: [[P], :void],
      hakuban_connector_new: [[P, H, P, :size_t, P], :int32],
      hakuban_connector_status: [[P, H], :int32],
      hakuban_connector_wait: [[P, H, :int32, :int64], :int32, true],
      hakuban_connector_status_fd: [[P, H], :int32],
      hakuban_connector_url: [[P, H], :int32],
      hakuban_connector_last_error: [[P, H], :int32],
      hakuban_connector_drop: [[H], :int32, true],
      hakuban_listener_options_init: [[P], :void],
      hakuban_listener_new: [[P, H, P], :int32, true],
      hakuban_listener_new_with_auth: [[P, H, P, P], :int32, true],
      hakuban_listener_url: [[P, H], :int32],
      hakuban_listener_set_auth: [[H, P], :int32, true],
      hakuban_listener_drop: [[H], :int32, true]
    }.freeze

    # The longest a waiting call stays inside the library, in milliseconds.
    # A Ruby thread blocked in C sees Interrupt, Thread#raise and Thread#kill
    # only when the call returns; 100 ms slices keep that under 0.5 s, at the
    # cost of one wake-up per slice for an idle waiter.
    WAIT_SLICE_MS = 100

    # Attached (and called) first, to check the ABI.
    FIRST = %i[hakuban_abi_version hakuban_version].freeze

    # The network section came later within ABI 0: a library without it
    # still loads, and these functions then raise LibraryError when called.
    NETWORK = FUNCTIONS.keys.grep(/\Ahakuban_(connector|listener)_/).freeze

    # Reads memory the library owns (strings, version arrays) by address,
    # without allocating a Pointer per read: MEM.get_string(address - 1).
    # ffi has no allocation-free way to follow a returned pointer, and the
    # receive path does it for every state. (Based at 1, not 0: ffi refuses
    # to read through a NULL pointer.)
    MEM = FFI::Pointer.new(1)

    LOCK = Mutex.new
    @loaded = false
    @forked = false
    @load_error = nil

    class << self
      # Whether the library is loaded (in this process, before any fork).
      def loaded?
        @loaded
      end

      # Whether the library may be called: loaded and not in a forked child.
      # The finalizers check it, so that a forked child never calls into the
      # (dead) Go runtime, not even at exit.
      def usable?
        @loaded && !@forked
      end

      # The path of the library to load: $HAKUBAN_LIBRARY, else the one
      # bundled in the gem (lib/hakuban/native/libhakuban.so).
      def library_path
        env = ENV["HAKUBAN_LIBRARY"]
        return env unless env.nil? || env.empty?

        File.join(__dir__, "native", "libhakuban.so")
      end

      # Loads the library and attaches every function (once; thread-safe).
      # Raises LibraryError when the library is missing or its ABI differs,
      # ForkError in a forked child.
      def load!
        LOCK.synchronize do
          return if @loaded
          raise @load_error if @load_error

          begin
            attach_all
          rescue LibraryError => e
            @load_error = e
            raise
          end
          @loaded = true
        end
        nil
      end

      # Called in a forked child (see ForkGuard): every function now raises.
      def forked!
        return unless @loaded

        @forked = true
        FUNCTIONS.each_key do |name|
          singleton_class.__send__(:remove_method, name) if singleton_class.method_defined?(name, false)
          define_singleton_method(name) { |*| raise ForkError.forked }
        end
      end

      private

      def attach_all
        # size_t outputs are read with read_uint64 on the hot paths.
        raise LibraryError, "hakuban needs a 64-bit platform (size_t of 8 bytes)" unless FFI.type_size(:size_t) == 8

        path = library_path
        unless File.exist?(path)
          hint = ENV["HAKUBAN_LIBRARY"].to_s.empty? ? " (the gem was built without it: run `rake native` in bindings/ruby, or set HAKUBAN_LIBRARY to libhakuban.so)" : " (from HAKUBAN_LIBRARY)"
          raise LibraryError, "libhakuban not found at #{path}#{hint}"
        end
        begin
          ffi_lib path
        rescue LoadError => e
          raise LibraryError, "cannot load libhakuban from #{path}: #{e.message}"
        end
        # Check the ABI before attaching anything else: a library of another
        # ABI must not be called at all.
        FIRST.each { |name| attach(name) }
        abi = hakuban_abi_version
        if abi != ABI_VERSION
          raise LibraryError, "#{path} has ABI version #{abi} (library #{hakuban_version}); " \
                              "this gem (hakuban #{VERSION}) needs ABI #{ABI_VERSION}"
        end
        (FUNCTIONS.keys - FIRST - NETWORK).each { |name| attach(name) }
        NETWORK.each do |name|
          attach(name)
        rescue LibraryError => e
          define_singleton_method(name) { |*| raise LibraryError, "#{e.message} (the library is older than this gem: it lacks this network function)" }
        end
      end

      # Replaces the stub of name by the library's function.
      def attach(name)
        params, ret, blocking = FUNCTIONS.fetch(name)
        singleton_class.__send__(:remove_method, name) if singleton_class.method_defined?(name, false)
        attach_function name, params, ret, blocking: blocking ? true : false
      rescue FFI::NotFoundError => e
        raise LibraryError, "#{library_path} lacks #{name}: #{e.message}"
      end
    end

    # Until the library is loaded, each function is a stub that loads it
    # (attach_function then replaces the stub) and calls the real function.
    FUNCTIONS.each_key do |name|
      define_singleton_method(name) do |*args|
        load!
        __send__(name, *args)
      end
    end
  end

  # ForkGuard marks the library unusable in a child forked after it was
  # loaded. Process._fork (Ruby >= 3.1) is what Kernel#fork, Process.fork and
  # IO.popen("-") call; spawn/system/`` (fork+exec) are not affected. (A
  # Process.daemon in a process that has loaded the library is not caught:
  # do not do that.)
  module ForkGuard
    def _fork
      pid = super
      Native.forked! if pid.zero?
      pid
    end
  end
  Process.singleton_class.prepend(ForkGuard)
end
