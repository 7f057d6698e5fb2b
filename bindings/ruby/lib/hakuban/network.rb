# frozen_string_literal: true

require "json"
require "uri"

module Hakuban
  # A connector's states by the value of enum hakuban_connector_state
  # (index = value).
  CONNECTOR_STATES = %i[connecting connected disconnected closed refused].freeze

  # A Connector's status at one moment: state (one of CONNECTOR_STATES),
  # connects (links established so far; a reconnect adds one) and failures
  # (consecutive failed attempts and short-lived links since the last link
  # that lasted; it sets the backoff). A frozen value.
  ConnectorStatus = Struct.new(:state, :connects, :failures) do
    CONNECTOR_STATES.each do |st|
      define_method(:"#{st}?") { state == st }
    end

    def inspect
      "#<Hakuban::ConnectorStatus #{state} connects=#{connects} failures=#{failures}>"
    end
    alias_method :to_s, :inspect
  end

  # Durations in seconds -> the library's milliseconds (an int64_t). nil
  # (and 0) keep the library's default; a positive duration is at least
  # 1 ms; a negative one stays negative, for the library to refuse
  # (InvalidConfigError). A duration that is not finite (Float::INFINITY,
  # NaN) or whose milliseconds do not fit an int64_t raises
  # InvalidArgumentError naming the option.
  def self.option_ms(seconds, name) # :nodoc:
    return 0 if seconds.nil?
    unless seconds.is_a?(Numeric) && seconds.real?
      raise ArgumentError, "#{name} must be a number of seconds, not #{seconds.inspect}"
    end
    raise Error.invalid_argument("#{name} must be a finite number of seconds, not #{seconds.inspect}") unless seconds.finite?

    ms = seconds * 1000
    ms = (ms.positive? ? ms.ceil : ms.floor).to_i
    return ms if Native::INT64_RANGE.cover?(ms)

    raise Error.invalid_argument("#{name} must be a number of seconds whose milliseconds fit in " \
                                 "#{Native::INT64_RANGE}, not #{seconds.inspect}")
  end

  # An Integer option for field of struct (an FFI::Struct), checked against
  # the field's C type: anything else (a Float, a negative value for an
  # unsigned field, one too large) raises InvalidArgumentError naming the
  # option, instead of ffi's RangeError or a silently wrapped value.
  def self.option_int(value, struct, field, name) # :nodoc:
    range = Native.field_range(struct, field)
    return value if value.is_a?(Integer) && range.cover?(value)

    raise Error.invalid_argument("#{name} must be an Integer in #{range} (what its C field holds), not #{value.inspect}")
  end

  # A file path option as a C string (nil stays NULL); Pathname works.
  def self.option_path(path) # :nodoc:
    path && FFI::MemoryPointer.from_string(path.respond_to?(:to_path) ? path.to_path : path.to_str)
  end

  # Copies and frees a string the library allocated for us (nil for NULL).
  def self.take_string(ptr) # :nodoc:
    return nil if ptr.null?

    begin
      ptr.read_string.force_encoding(Encoding::UTF_8).freeze
    ensure
      Native.hakuban_string_free(ptr)
    end
  end

  # Links an Exchange to its upstream: a router (hakuban-router) or another
  # process's Listener. It dials the URLs in order of preference, uses the
  # first that answers, fails over to the next when the link is lost, and
  # reconnects forever with capped exponential backoff and full jitter,
  # until it is closed (or its exchange is).
  #
  #   Hakuban::Exchange.open(name: "sensors") do |exchange|
  #     exchange.connect("ws://127.0.0.1:3001/")      # returns at once
  #     exchange.observe_object({"sensor" => 7}) { |c| p c.next.json }
  #   end
  #
  # Contracts do not need the link to be up (they are declared whenever it
  # comes up, and again after every reconnect); #wait(:connected) is there
  # for programs that want to know. An exchange has at most one connector;
  # the exchange keeps it (a bare `exchange.connect(url)` stays linked) until
  # it or the exchange is closed.
  class Connector < Handle
    DROP = :hakuban_connector_drop # :nodoc:

    # Ruby option => C field, for the durations (seconds in Ruby).
    DURATIONS = {
      min_backoff: :min_backoff_ms,
      max_backoff: :max_backoff_ms,
      ping_interval: :ping_interval_ms,
      ping_timeout: :ping_timeout_ms
    }.freeze
    TLS_FILES = %i[tls_ca_file tls_cert_file tls_key_file].freeze
    CLOSED = CONNECTOR_STATES.index(:closed)
    private_constant :DURATIONS, :TLS_FILES, :CLOSED

    # The upstream URLs, in order of preference (frozen Strings).
    attr_reader :urls
    # The Exchange it links.
    attr_reader :exchange

    # Starts a connector for exchange. urls: one URL or an Array of them
    # (ws://host:port/path or wss://...), in order of preference. Options
    # (all optional; nil keeps the library's default):
    #
    # name::          this exchange's name as the upstream sees it (default:
    #                 the exchange's name)
    # token::         a String sent in the handshake for the upstream to
    #                 authenticate this exchange
    # min_backoff::   shortest wait between attempts, seconds (0.1)
    # max_backoff::   longest wait between attempts, seconds (10)
    # ping_interval:: how often the upstream is pinged, seconds (4)
    # ping_timeout::  a link whose pong takes longer is dead, seconds (5)
    # tls_ca_file::   PEM file of the CAs wss:// upstreams are verified
    #                 against (default: the system's roots)
    # tls_cert_file:: PEM client certificate (mutual TLS), with tls_key_file
    # tls_key_file::  PEM private key of tls_cert_file
    #
    # Raises InvalidArgumentError for a malformed URL (or when the exchange
    # already has a connector) and, naming the option, for a duration that
    # is infinite, NaN or whose milliseconds do not fit 64 bits;
    # InvalidConfigError for an option the library finds out of range or an
    # unusable TLS file. Exchange#connect / Connector.open with a block
    # yield the connector and close it afterwards.
    def initialize(exchange, urls, name: nil, token: nil, **options)
      unknown = options.keys - DURATIONS.keys - TLS_FILES
      raise ArgumentError, "unknown option(s): #{unknown.join(", ")}" unless unknown.empty?

      @urls = Array(urls).map { |u| u.to_str.dup.freeze }.freeze
      raise ArgumentError, "give at least one upstream URL" if @urls.empty?

      @exchange = exchange
      opts = Native::ConnectorOptions.new
      Native.hakuban_connector_options_init(opts)
      # The MemoryPointers must live until hakuban_connector_new returns
      # (the library copies everything during the call): `keep` holds them.
      keep = []
      if name
        keep << (p = FFI::MemoryPointer.from_string(name.to_s))
        opts[:name] = p
      end
      if token
        bytes = token.to_str.b
        unless bytes.empty?
          keep << (p = FFI::MemoryPointer.new(:uint8, bytes.bytesize))
          p.put_bytes(0, bytes)
          opts[:token] = p
          opts[:token_len] = bytes.bytesize
        end
      end
      DURATIONS.each { |k, field| opts[field] = Hakuban.option_ms(options[k], k) }
      TLS_FILES.each do |k|
        next unless (p = Hakuban.option_path(options[k]))

        keep << p
        opts[k] = p
      end
      url_ptrs = @urls.map { |u| FFI::MemoryPointer.from_string(u) }
      array = FFI::MemoryPointer.new(:pointer, url_ptrs.size)
      array.write_array_of_pointer(url_ptrs)
      s = Scratch.get
      Error.check(Native.hakuban_connector_new(s.u64, exchange.handle, array, url_ptrs.size, opts))
      init_handle(s.u64.read_uint64)
      keep.clear
      exchange.__send__(:adopt_link, self)
    end

    # The current status (never blocks): a ConnectorStatus with state
    # (:connecting, :connected, :disconnected, :closed or :refused),
    # connects and failures. Reading it makes #to_io not readable until the
    # next change.
    def status
      info = Scratch.get.connector_status
      Error.check(Native.hakuban_connector_status(info, handle))
      status_of(info)
    end

    # The current state: status.state.
    def state
      status.state
    end

    # Whether the link is up now.
    def connected?
      state == :connected
    end

    # The upstream URL it is connected to, is dialing, or (while
    # :disconnected) failed on last.
    def url
      s = Scratch.get
      Error.check(Native.hakuban_connector_url(s.ptr, handle))
      Hakuban.take_string(s.ptr.read_pointer)
    end

    # Why the last attempt or link ended (e.g. "core: dial ws://...:
    # connection refused"), or nil if nothing failed yet. It stays set after
    # a successful reconnect.
    def last_error
      s = Scratch.get
      Error.check(Native.hakuban_connector_last_error(s.ptr, handle))
      Hakuban.take_string(s.ptr.read_pointer)
    end

    # Waits until the connector is in state (a Symbol of CONNECTOR_STATES; at
    # once if it already is) and returns its ConnectorStatus. With state
    # nil, waits until the status differs from since: (a ConnectorStatus you
    # saw earlier; default: the status when the call starts) in state,
    # connects or failures, so that a loop passing the last status it got
    # never misses a change (changes in between coalesce).
    #
    # timeout: seconds, nil or Float::INFINITY = no limit, 0 or negative =
    # look once without waiting; returns nil when it expires. Raises
    # RefusedError when the connector can no longer get to state because
    # every URL refused it for good (the message is #last_error),
    # ClosedError when it is closed (here, from another thread, or by
    # closing its exchange), and InvalidArgumentError for a NaN timeout.
    #
    # The GVL is released while it waits, in slices of at most 100 ms, so
    # Interrupt, Thread#raise and Thread#kill get through.
    def wait(state = nil, timeout: nil, since: nil)
      want = state.nil? ? -1 : CONNECTOR_STATES.index(state)
      raise ArgumentError, "state must be one of #{CONNECTOR_STATES.inspect} or nil, not #{state.inspect}" unless want

      timeout = Hakuban.timeout_seconds(timeout)
      seen = since || (state.nil? ? status : nil)
      info = Scratch.get.connector_status
      deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        slice = Native::WAIT_SLICE_MS
        last = false
        if deadline
          left = ((deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)) * 1000).ceil
          left = 0 if left.negative?
          last = left <= slice
          slice = left if last
        end
        # Another thread may have closed us between slices.
        h = @cell.first or raise closed_error
        fill(info, seen) if seen
        rc = Native.hakuban_connector_wait(info, h, want, slice)
        case rc
        when OK then return status_of(info)
        when TIMEOUT
          return nil if last

          next
        end
        raise closed_error if closed? || (rc == END_ && info[:state] == CLOSED)
        raise RefusedError.new("the connector was refused for good: #{last_error}", code: RESULT_CODES[:HAKUBAN_ERR_REFUSED]) if rc == END_

        Error.check(rc)
      end
    end

    # Yields the ConnectorStatus every time it changes (state, connects or
    # failures; changes in between coalesce) until the connector is closed
    # (then returns self). Without a block, an Enumerator.
    def each_change
      return enum_for(:each_change) unless block_given?

      seen = status
      loop do
        begin
          seen = wait(nil, since: seen)
        rescue ClosedError
          break
        end
        yield seen
      end
      self
    end

    # An IO for IO.select (or IO#wait_readable) that is readable exactly
    # while the status (state, connects or failures) changed since it was
    # last read, by #status, #state, #connected?, #wait or #each_change;
    # reading it makes the IO not readable until the next change. So, in an
    # event loop:
    #
    #   loop do
    #     IO.select([connector, *others])
    #     puts connector.status.state      # :connected, :disconnected, ...
    #   end
    #
    # Once the connector's exchange is closed (status :closed) it stays
    # readable. The fd belongs to the connector: do not read it or close it;
    # it is closed with the connector (the IO keeps the connector alive).
    def to_io
      readiness_io
    end

    # Stops the connector: the link is closed normally (the upstream forgets
    # this exchange's contracts at once; they stay here), blocked #wait calls
    # raise ClosedError. Returns once it has stopped (at most about 2 s).
    # The exchange may connect again afterwards. Idempotent.
    def close
      super
      @exchange.__send__(:forget_link, self)
      nil
    end

    private

    def native_fd(out, h) = Native.hakuban_connector_status_fd(out, h)

    def before_close
      close_readiness_io
    end

    def status_of(info)
      ConnectorStatus.new(CONNECTOR_STATES.fetch(info[:state], :unknown), info[:connects], info[:failures]).freeze
    end

    def fill(info, status)
      info[:state] = CONNECTOR_STATES.index(status.state) || -1
      info[:connects] = Hakuban.option_int(status.connects, info, :connects, "since.connects")
      info[:failures] = Hakuban.option_int(status.failures, info, :failures, "since.failures")
    end

    def closed_error
      ClosedError.new(closed? ? "Connector is closed" : "the connector's exchange was closed",
                      code: RESULT_CODES[:HAKUBAN_ERR_CLOSED])
    end

    def inspect_details
      return " #{@urls.join(" ")}" if closed?

      " #{@urls.join(" ")} #{status.state}"
    rescue Error
      " #{@urls.join(" ")}"
    end
  end

  # Makes an Exchange accept downstream links (other processes' connectors,
  # or routers) on a TCP port: two programs can link directly, without a
  # router.
  #
  #   listener = exchange.listen(address: "127.0.0.1:0")   # any free port
  #   listener.url        # => "ws://127.0.0.1:41234/": give it to the other side
  #
  # The port is bound at once (a busy port raises ConnectionError here). The
  # exchange keeps the listener until it or the exchange is closed; closing
  # it closes every downstream link and unbinds the port.
  #
  # With auth: the listener checks the token of every downstream (the
  # connector's token:) and what each may observe and expose, as a router
  # with an auth file does (docs/router.md):
  #
  #   listener = exchange.listen(auth: { "clients" => [
  #     { "name" => "ingest", "token" => "secret-1", "observe" => "*", "expose" => "*" },
  #     { "name" => "dashboard", "token" => "secret-2", "observe" => { "tags" => ["public"] } }
  #   ] })
  #   listener.auth = other_rules   # applies at once, to open links too
  class Listener < Handle
    DROP = :hakuban_listener_drop # :nodoc:
    TLS_FILES = %i[tls_cert_file tls_key_file tls_client_ca_file].freeze
    private_constant :TLS_FILES

    # The URL downstreams connect to, with the port actually bound, e.g.
    # "ws://127.0.0.1:41234/" (for a wildcard address such as 0.0.0.0 it
    # names that address: give the others a host they can reach).
    attr_reader :url
    # The Exchange that accepts the links.
    attr_reader :exchange

    # Binds address (host:port; port 0 picks a free one; "0.0.0.0:3001" or
    # ":3001" accepts links from other machines) and serves WebSocket links
    # on path (default "/"). tls_cert_file and tls_key_file (PEM) make it
    # serve wss://; tls_client_ca_file then requires client certificates
    # signed by those CAs. ping_interval / ping_timeout in seconds (default 4
    # and 5). auth: who may connect and what each client may observe and
    # expose, in the format of the router's auth file (docs/router.md): a
    # Hash (or Array) turned into JSON, or a String of JSON; nil (the
    # default) lets every client do everything. See #set_auth. Raises
    # ConnectionError when the address cannot be bound, InvalidArgumentError
    # naming the option for a ping duration that is infinite, NaN or whose
    # milliseconds do not fit 64 bits, InvalidConfigError for an unusable
    # option or auth rules that are not valid.
    def initialize(exchange, address: "127.0.0.1:0", path: nil, ping_interval: nil, ping_timeout: nil, auth: nil, **files)
      unknown = files.keys - TLS_FILES
      raise ArgumentError, "unknown option(s): #{unknown.join(", ")}" unless unknown.empty?

      @exchange = exchange
      opts = Native::ListenerOptions.new
      Native.hakuban_listener_options_init(opts)
      keep = []
      { address: address, path: path }.each do |field, value|
        next if value.nil?

        keep << (p = FFI::MemoryPointer.from_string(value.to_str))
        opts[field] = p
      end
      json = Listener.auth_json(auth)
      keep << (auth_ptr = FFI::MemoryPointer.from_string(json)) if json
      TLS_FILES.each do |k|
        next unless (p = Hakuban.option_path(files[k]))

        keep << p
        opts[k] = p
      end
      opts[:ping_interval_ms] = Hakuban.option_ms(ping_interval, :ping_interval)
      opts[:ping_timeout_ms] = Hakuban.option_ms(ping_timeout, :ping_timeout)
      s = Scratch.get
      if json
        Error.check(Native.hakuban_listener_new_with_auth(s.u64, exchange.handle, opts, auth_ptr))
      else
        Error.check(Native.hakuban_listener_new(s.u64, exchange.handle, opts))
      end
      init_handle(s.u64.read_uint64)
      keep.clear
      Error.check(Native.hakuban_listener_url(s.ptr, handle))
      @url = Hakuban.take_string(s.ptr.read_pointer)
      exchange.__send__(:adopt_link, self)
    end

    # [host, port] actually bound, e.g. ["127.0.0.1", 41234].
    def address
      u = URI.parse(@url)
      [u.host.delete_prefix("[").delete_suffix("]"), u.port]
    end

    # The port actually bound.
    def port
      address[1]
    end

    # Replaces the listener's auth rules (auth as in Listener.new: a Hash or
    # Array turned into JSON, a String of JSON, or nil for no rules: every
    # client may do everything) and applies them at once, to new links and
    # to the open ones, as a router reloading its auth file does:
    #
    # * a client whose token the rules no longer accept is disconnected: its
    #   connector's status becomes :refused and it does not retry;
    # * a contract a client may no longer make is refused: its next receive
    #   raises RefusedError once (an observer may first get the object's
    #   last state again, no longer synchronized), and an assignment it held
    #   ends;
    # * rights added apply to what clients declare afterwards.
    #
    # Raises InvalidConfigError when the rules are not valid (the message
    # says where); the previous rules then stay. Thread-safe. Returns self.
    def set_auth(auth)
      json = Listener.auth_json(auth)
      ptr = json && FFI::MemoryPointer.from_string(json)
      Error.check(Native.hakuban_listener_set_auth(handle, ptr))
      self
    end

    # listener.auth = rules: #set_auth(rules).
    def auth=(auth)
      set_auth(auth)
    end

    # The auth rules as JSON text for the library: nil stays nil, a String
    # is taken as JSON text, a Hash or an Array is generated.
    def self.auth_json(auth) # :nodoc:
      return nil if auth.nil?

      json = if auth.is_a?(Hash) || auth.is_a?(Array)
               JSON.generate(auth)
             elsif auth.respond_to?(:to_str)
               auth.to_str
             else
               raise ArgumentError, "auth must be a Hash, an Array, a String of JSON or nil, not #{auth.class}"
             end
      raise ArgumentError, "auth JSON must not contain NUL bytes" if json.include?("\0")

      json
    end

    # Stops accepting, closes every downstream link normally (their
    # exchanges reconnect elsewhere or later) and unbinds the port. Returns
    # when that is done (at most about 2 s). Idempotent.
    def close
      super
      @exchange.__send__(:forget_link, self)
      nil
    end

    private

    def inspect_details
      " #{@url}"
    end
  end
end
