# frozen_string_literal: true

require "json"

module Hakuban
  # The local meeting point of contracts; one per process is typical.
  #
  #   Hakuban::Exchange.open(name: "sensors") do |exchange|
  #     exchange.observe_object({"sensor" => 7}) { |c| p c.next.json }
  #   end
  #
  # Closing it closes every contract made on it: their waits end, their
  # sinks are revoked. (Their Ruby objects still hold handles until they are
  # closed or collected.) It also closes its Connector and Listeners, which
  # it keeps until then.
  class Exchange < Handle
    DROP = :hakuban_exchange_drop # :nodoc:

    # Ruby option => [C field, kind]: :int (an Integer the C field's type
    # holds), :ms (seconds in Ruby, milliseconds in C; see
    # Hakuban.option_ms) or :float (as given; the library checks its range).
    OPTIONS = {
      max_descriptor_size: [:max_descriptor_size, :int],
      max_tags: [:max_tags, :int],
      rebalance_threshold: [:rebalance_threshold, :float],
      rebalance_interval: [:rebalance_interval_ms, :ms],
      max_moves_per_interval: [:max_moves_per_interval, :int],
      handover_timeout: [:handover_timeout_ms, :ms]
    }.freeze
    LISTS = %w[objects tags contracts links].freeze
    private_constant :OPTIONS, :LISTS

    # The exchange's name (in snapshots and logs).
    attr_reader :name

    # Makes an exchange. Every option is optional (nil or left out: the
    # library's default): name:, max_descriptor_size: (bytes, 64 KiB),
    # max_tags: (64), rebalance_threshold: (0.1), rebalance_interval:
    # (seconds, 0.1), max_moves_per_interval: (64), handover_timeout:
    # (seconds, 1.0). Raises InvalidArgumentError naming the option for a
    # value its C field cannot hold (a non-Integer or negative count, one
    # too large for the field, an infinite or NaN duration, one whose
    # milliseconds do not fit 64 bits), InvalidConfigError for an option
    # the library finds out of range.
    # Exchange.open does the same and, with a block, closes it afterwards.
    def initialize(name: nil, **options)
      unknown = options.keys - OPTIONS.keys
      raise ArgumentError, "unknown option(s): #{unknown.join(", ")}" unless unknown.empty?

      opts = Native::ExchangeOptions.new
      Native.hakuban_exchange_options_init(opts)
      name_ptr = name && FFI::MemoryPointer.from_string(name.to_s)
      opts[:name] = name_ptr if name_ptr
      options.each do |k, v|
        next if v.nil?

        field, kind = OPTIONS.fetch(k)
        opts[field] = case kind
                      when :int then Hakuban.option_int(v, opts, field, k)
                      when :ms then Hakuban.option_ms(v, k)
                      else v
                      end
      end
      s = Scratch.get
      Error.check(Native.hakuban_exchange_new(s.u64, opts))
      @name = (name || "exchange").to_s.freeze
      # Connectors and listeners, kept until closed: `exchange.connect(url)`
      # as a statement means "stay linked" (unlike a contract nobody keeps).
      @links = []
      @links_lock = Mutex.new
      init_handle(s.u64.read_uint64)
    end

    # "I want this object": an ObjectObserveContract. descriptor is an
    # ObjectDescriptor or a value (with tags:). With a block, yields the
    # contract, closes it afterwards and returns the block's value.
    def observe_object(descriptor, tags: nil, &block)
      ObjectObserveContract.open(self, descriptor, tags: tags, &block)
    end

    # "I can produce this object": an ObjectExposeContract with capacity.
    # Block form as #observe_object.
    def expose_object(descriptor, tags: nil, capacity: 1, &block)
      ObjectExposeContract.open(self, descriptor, tags: tags, capacity: capacity, &block)
    end

    # "I want every live object with this tag": a TagObserveContract. tag is
    # a TagDescriptor or a value. Block form as #observe_object.
    def observe_tag(tag, &block)
      TagObserveContract.open(self, tag, &block)
    end

    # "I can produce any object with this tag": a TagExposeContract with
    # capacity. Block form as #observe_object.
    def expose_tag(tag, capacity: 1, &block)
      TagExposeContract.open(self, tag, capacity: capacity, &block)
    end

    # Links this exchange to an upstream (a router, or another process's
    # Listener): a Connector for urls (one or an Array, in order of
    # preference), which returns at once and reconnects forever. Options:
    # name:, token:, min_backoff:, max_backoff:, ping_interval:,
    # ping_timeout: (seconds), tls_ca_file:, tls_cert_file:, tls_key_file:
    # (see Connector.new). The exchange keeps the connector until it (or the
    # exchange) is closed. With a block, yields it, closes it afterwards and
    # returns the block's value.
    def connect(urls, **options, &block)
      Connector.open(self, urls, **options, &block)
    end

    # Accepts downstream links: a Listener bound to address (default
    # "127.0.0.1:0", any free port: see Listener#url). Options: path:,
    # tls_cert_file:, tls_key_file:, tls_client_ca_file:, ping_interval:,
    # ping_timeout:, auth: (token permissions; see Listener.new and
    # Listener#set_auth). Kept by the exchange until it (or the
    # exchange) is closed. Block form as #connect.
    def listen(address: "127.0.0.1:0", **options, &block)
      Listener.open(self, address: address, **options, &block)
    end

    # The Connector, or nil.
    def connector
      @links_lock.synchronize { @links.find { |l| l.is_a?(Connector) } }
    end

    # The open Listeners.
    def listeners
      @links_lock.synchronize { @links.grep(Listener) }
    end

    # A structured picture of the exchange as a Hash (string keys): "name",
    # "objects" (descriptor, live, observed, exposer, version, size,
    # synchronized...), "tags", "contracts" (kind, status, capacity, load),
    # "links", "counters".
    def snapshot
      s = Scratch.get
      Error.check(Native.hakuban_exchange_snapshot(s.ptr, handle))
      p = s.ptr.read_pointer
      begin
        snap = JSON.parse(p.read_string.force_encoding(Encoding::UTF_8))
        # The library writes null for an empty list; a Hash of Arrays is
        # easier to use.
        LISTS.each { |k| snap[k] ||= [] if snap.key?(k) }
        snap
      ensure
        Native.hakuban_string_free(p)
      end
    end

    private

    def adopt_link(link)
      @links_lock.synchronize { @links << link }
    end

    def forget_link(link)
      @links_lock.synchronize { @links.delete(link) }
    end

    # Connectors and listeners first: the upstream is told goodbye while the
    # exchange still exists.
    def before_close
      links = @links_lock.synchronize { @links.dup.tap { @links.clear } }
      links.each(&:close)
    end

    def inspect_details
      " #{@name.inspect}"
    end
  end
end
