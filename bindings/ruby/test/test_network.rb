# frozen_string_literal: true

require_relative "helper"
require "json"
require "socket"
require "timeout"
require "digest/sha1"
require "set"

# Connector and Listener, and SPEC §2 behaviours between exchanges (and
# processes) linked through a real hakuban-router process on port 0.
class TestNetwork < Minitest::Test
  OD = Hakuban::ObjectDescriptor
  T = 10 # seconds: an upper bound, the waits return as soon as things happen
  FAST = { min_backoff: 0.02, max_backoff: 0.2 }.freeze

  # The exposer of the failover test, a process of its own: tag-exposes
  # "rooms" and, for each assignment, sends {"n", "pid"} every 20 ms until
  # it is revoked. It also exposes {"probe" => pid}, which the test
  # observes to know that this process's declarations reached the router.
  EXPOSER = <<~'RUBY'
    require "hakuban"
    Hakuban.log_level = :error
    Hakuban::Exchange.open(name: "exposer-#{Process.pid}") do |ex|
      ex.connect(ARGV[0], min_backoff: 0.02, max_backoff: 0.2)
      rooms = ex.expose_tag("rooms")
      probe = ex.expose_object({ "probe" => Process.pid })
      Thread.new { probe.each { |sink| sink.send_json("here") } }
      puts "ready"
      $stdout.flush
      rooms.for_each_till_revoked do |sink|
        n = sink.current&.json&.fetch("n", 0) || 0
        until sink.revoked?
          n += 1
          begin
            sink.send_json({ "n" => n, "pid" => Process.pid })
          rescue Hakuban::RevokedError
            break
          end
          sink.wait_revoked(timeout: 0.02)
        end
      end
    end
  RUBY

  def setup
    Hakuban.log_level = :error # the library logs every lost link at :warn
  end

  def teardown
    super
  ensure
    Hakuban.log_level = :warn
  end

  def assert_newer(newer, older)
    assert_equal 1, newer <=> older, "version #{newer.inspect} is not newer than #{older.inspect}"
  end

  # An exchange linked to router, its connector up.
  def linked(router, name)
    ex = exchange(name: name)
    ex.connect(router.url, **FAST).wait(:connected, timeout: T) or flunk "#{name} never connected to #{router.url}"
    ex
  end

  # The next state from observe matching the block, skipping others.
  def state_where(observe, timeout: T)
    deadline = monotonic + timeout
    loop do
      left = deadline - monotonic
      flunk "no matching state within #{timeout} s (last: #{observe.current.inspect})" unless left.positive?
      st = observe.next(timeout: left)
      return st if st && yield(st)
    end
  end

  def test_connector_status_wait_and_reconnect
    router = start_router
    ex = exchange(name: "watched")
    c = ex.connect(router.url, **FAST)
    assert_instance_of Hakuban::Connector, c
    assert_same c, ex.connector
    assert_equal [router.url], c.urls
    st = c.wait(:connected, timeout: T)
    assert_instance_of Hakuban::ConnectorStatus, st
    assert st.connected?
    assert st.frozen?
    assert_equal [:connected, 1, 0], st.to_a
    assert_equal st, c.status
    assert_equal :connected, c.state
    assert c.connected?
    assert_equal router.url, c.url
    assert_nil c.last_error
    assert_match(/connected/, c.inspect)
    assert_equal st, c.wait(:connected, timeout: 0), "a state it is in returns at once"
    assert_nil c.wait(:disconnected, timeout: 0)
    assert_nil c.wait(timeout: 0.05), "nothing changed"

    # The router dies: a change, then :disconnected, with the reason.
    seen = c.status
    router.kill
    changed = c.wait(since: seen, timeout: T)
    refute_equal seen, changed
    down = c.wait(:disconnected, timeout: T)
    assert_operator down.failures, :>=, 1
    assert_equal 1, down.connects
    refute_nil c.last_error

    # It comes back on the same address: the connector reconnects by itself.
    router.restart
    back = c.wait(:connected, timeout: T)
    assert_equal 2, back.connects
    refute_nil c.last_error, "the last error stays after a reconnect"

    # each_change follows the status; closing ends it. The connector is
    # closed only once the thread has reported the link going down (it
    # reports the status it finds after each change, so a close right
    # after the kill could be the first change it sees).
    reported = Queue.new
    changes = Thread.new { c.each_change.map { |s| reported << s.state; s.state } }
    wait_until_blocked(changes)
    router.kill
    down = Timeout.timeout(T) { loop { (s = reported.pop) == :connected or break s } }
    c.close
    assert_includes changes.value, down
    refute_equal :connected, down
    assert c.closed?
    assert_nil ex.connector
    assert_nil c.close
    assert_raises(Hakuban::ClosedError) { c.status }
    assert_raises(Hakuban::ClosedError) { c.url }
    assert_raises(Hakuban::ClosedError) { c.wait(:connected) }
    assert_match(/closed/, c.inspect)
  end

  def test_connector_block_form_and_one_per_exchange
    router = start_router
    ex = exchange
    value = ex.connect([router.url], name: "blocky", token: "secret", ping_interval: 0.5, ping_timeout: 1) do |c|
      assert c.wait(:connected, timeout: T)
      # One upstream per exchange.
      assert_raises(Hakuban::InvalidArgumentError) { ex.connect(router.url) }
      :done
    end
    assert_equal :done, value
    assert_nil ex.connector
    # Closed: another one may be made.
    assert ex.connect(router.url).wait(:connected, timeout: T)
  end

  def test_connector_to_nowhere_and_bad_arguments
    ex = exchange
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] } # a port nobody listens on
    c = ex.connect("ws://127.0.0.1:#{port}/", min_backoff: 0.01, max_backoff: 0.05)
    down = c.wait(:disconnected, timeout: T)
    assert_equal 0, down.connects
    assert_match(/refused/, c.last_error)
    assert_equal "ws://127.0.0.1:#{port}/", c.url
    assert_raises(ArgumentError) { c.wait(:bogus) }
    c.close

    assert_raises(Hakuban::InvalidArgumentError) { ex.connect("http://example.invalid/") }
    assert_raises(ArgumentError) { ex.connect([]) }
    assert_raises(ArgumentError) { ex.connect("ws://127.0.0.1:1/", min_backof: 1) }
    assert_raises(Hakuban::InvalidConfigError) { ex.connect("ws://127.0.0.1:1/", min_backoff: -1) }
    e = assert_raises(Hakuban::InvalidConfigError) { ex.connect("wss://127.0.0.1:1/", tls_ca_file: "/nonexistent/ca.pem") }
    assert_match(%r{/nonexistent/ca.pem}, e.message)
    assert_nil ex.connector, "a failed connect leaves nothing behind"

    listener = ex.listen
    e = assert_raises(Hakuban::ConnectionError) { ex.listen(address: "127.0.0.1:#{listener.port}") }
    assert_match(/in use/, e.message)
    assert_raises(Hakuban::InvalidConfigError) { ex.listen(tls_key_file: "/nonexistent/key.pem") }
    assert_raises(ArgumentError) { ex.listen(tls_cert: "x") }
    ex.close
    assert listener.closed?, "closing the exchange closes its listeners"
    assert_raises(Hakuban::ClosedError) { ex.connect("ws://127.0.0.1:1/") }
  end

  # A server that accepts the WebSocket upgrade and closes the link with
  # 4002 (auth refused): a refusal for good, which the router cannot be
  # told to give.
  def refusing_server
    server = TCPServer.new("127.0.0.1", 0)
    thread = Thread.new do
      loop do
        sock = server.accept
        req = +""
        req << sock.readpartial(4096) until req.include?("\r\n\r\n")
        key = req[/^Sec-WebSocket-Key:\s*(\S+)/i, 1]
        accept = [Digest::SHA1.digest("#{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11")].pack("m0")
        proto = req[/^Sec-WebSocket-Protocol:\s*([^,\r\n]+)/i, 1]
        sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
                   "Sec-WebSocket-Accept: #{accept}\r\n#{proto ? "Sec-WebSocket-Protocol: #{proto}\r\n" : ""}\r\n")
        reason = "auth refused: not you"
        sock.write([0x88, 2 + reason.bytesize, 4002].pack("CCn") + reason)
        sock.read # until the client closes
        sock.close
      rescue IOError, SystemCallError
        sock&.close
      end
    end
    [server, thread]
  end

  # A router with an auth file refuses a contract outside the token's
  # permissions: next raises RefusedError (once) with the router's reason,
  # the status is :refused, and the contract stays open.
  def test_contract_refused_by_router_permissions
    Hakuban.log_level = :off # the library logs the refusal as a warning
    auth = File.join(Dir.mktmpdir("hakuban-auth"), "auth.json")
    File.write(auth, JSON.generate({ "clients" => [
                                     { "name" => "rb-reader", "token" => "rb-token",
                                       "observe" => { "tags" => ["public"] } }
                                   ] }))
    router = start_router(args: ["--auth-file", auth])
    Hakuban::Exchange.open(name: "rb-reader") do |ex|
      assert ex.connect(router.url, token: "rb-token", **FAST).wait(:connected, timeout: T)
      observe = ex.observe_object(OD.new("secret", tags: ["private"]))
      e = assert_raises(Hakuban::RefusedError) { observe.next(timeout: T) }
      assert_match(/permission denied: "rb-reader"/, e.message)
      assert_equal Hakuban::RESULT_CODES[:HAKUBAN_ERR_REFUSED], e.code
      assert_equal :refused, observe.status
      assert_nil observe.try_next
      refute observe.closed?
      observe.close
    end
  ensure
    FileUtils.rm_rf(File.dirname(auth)) if auth
  end

  def test_refused_for_good
    Hakuban.log_level = :off # the library logs the refusal as an error
    server, thread = refusing_server
    c = exchange.connect("ws://127.0.0.1:#{server.addr[1]}/", **FAST)
    st = c.wait(:refused, timeout: T)
    assert st.refused?
    assert_match(/auth refused: not you/, c.last_error)
    e = assert_raises(Hakuban::RefusedError) { c.wait(:connected, timeout: T) }
    assert_match(/auth refused/, e.message)
    assert_equal Hakuban::RESULT_CODES[:HAKUBAN_ERR_REFUSED], e.code
  ensure
    thread&.kill
    server&.close
  end

  def test_wait_ends_when_closed_from_another_thread
    ex = exchange
    c = ex.connect("ws://127.0.0.1:1/", **FAST)
    waiter = Thread.new do
      c.wait(:connected)
    rescue Hakuban::ClosedError => e
      e
    end
    wait_until_blocked(waiter)
    t0 = monotonic
    c.close
    assert_instance_of Hakuban::ClosedError, waiter.value
    assert_operator monotonic - t0, :<, 2.5

    # Closing the exchange closes its connector too.
    c2 = ex.connect("ws://127.0.0.1:1/", **FAST)
    waiter = Thread.new do
      c2.wait(:connected)
    rescue Hakuban::ClosedError => e
      e
    end
    wait_until_blocked(waiter)
    ex.close
    assert_instance_of Hakuban::ClosedError, waiter.value
    assert c2.closed?
  end

  def test_thread_raise_reaches_a_thread_waiting_in_wait
    c = exchange.connect("ws://127.0.0.1:1/", **FAST)
    waiter = Thread.new do
      c.wait(:connected)
    rescue RuntimeError => e
      e
    end
    wait_until_blocked(waiter)
    t0 = monotonic
    waiter.raise("stop")
    assert_equal "stop", waiter.value.message
    assert_operator monotonic - t0, :<, 0.5
  end

  def test_sigint_while_waiting_in_wait
    script = <<~RUBY
      require "hakuban"
      Hakuban.log_level = :off
      c = Hakuban::Exchange.new.connect("ws://127.0.0.1:1/", min_backoff: 0.05)
      main = Thread.main
      Thread.new do
        Thread.pass until main.status == "sleep"
        puts "waiting"
        $stdout.flush
      end
      begin
        c.wait(:connected)
        puts "returned"
      rescue Interrupt
        puts "interrupted"
      end
    RUBY
    child = start_ruby(script)
    child.expect(/waiting/)
    t0 = monotonic
    Process.kill(:INT, child.pid)
    child.expect(/interrupted/, timeout: 5)
    elapsed = monotonic - t0
    assert child.wait.success?, child.output
    assert_operator elapsed, :<, 0.5, "Ctrl-C took #{elapsed.round(3)} s"
  end

  def test_listener_links_two_exchanges_directly
    up = exchange(name: "up")
    listener = up.listen(address: "127.0.0.1:0", path: "/hakuban")
    host, port = listener.address
    assert_equal "127.0.0.1", host
    assert_operator port, :>, 0
    assert_equal "ws://127.0.0.1:#{port}/hakuban", listener.url
    assert_equal [listener], up.listeners
    down = exchange(name: "down")
    c = down.connect(listener.url, **FAST)
    assert c.wait(:connected, timeout: T)
    d = OD.new({ "direct" => 1 })
    observe = down.observe_object(d)
    up.expose_object(d) { |expose| expose.next(timeout: T).send_json("hi") }
    # (the block closed the expose contract: the state stays, unsynchronized)
    assert_equal "hi", state_where(observe) { true }.json

    listener.close
    assert listener.closed?
    assert_empty up.listeners
    assert c.wait(:disconnected, timeout: T)
    up.listen(address: "127.0.0.1:#{port}", path: "/hakuban") do
      assert_equal 2, c.wait(:connected, timeout: T).connects
    end
  end

  # Waits for observe's next to raise RefusedError (states may come first:
  # the object's last state again, no longer synchronized). Returns
  # [the error, the last state received before it (or nil)].
  def refusal_of(observe, timeout: T)
    deadline = monotonic + timeout
    last = nil
    loop do
      left = deadline - monotonic
      flunk "no refusal within #{timeout} s (last state: #{last.inspect})" unless left.positive?
      begin
        st = observe.next(timeout: left)
      rescue Hakuban::RefusedError => e
        return [e, last]
      end
      last = st if st
    end
  end

  # A listener with auth rules (the router's auth file format): a writer
  # token may do everything, a reader token may observe tag "public" only.
  # set_auth then narrows the reader on its open link, rejects bad JSON
  # keeping the rules, and finally drops the reader's token, which refuses
  # its connector for good while the writer stays linked.
  def test_listener_auth_and_set_auth
    Hakuban.log_level = :off # the library logs the refusals
    writer_rule = { "name" => "writer", "token" => "w-token", "observe" => "*", "expose" => "*" }
    reader_rule = { "name" => "reader", "token" => "r-token", "observe" => { "tags" => ["public"] } }
    up = exchange(name: "up")
    listener = up.listen(auth: { "clients" => [writer_rule, reader_rule] })
    writer = exchange(name: "writer")
    reader = exchange(name: "reader")
    wc = writer.connect(listener.url, token: "w-token", **FAST)
    rc = reader.connect(listener.url, token: "r-token", **FAST)
    assert wc.wait(:connected, timeout: T), "writer: #{wc.last_error}"
    assert rc.wait(:connected, timeout: T), "reader: #{rc.last_error}"

    news = OD.new("news", tags: ["public"])
    weather = OD.new("weather", tags: ["public"])
    secret = OD.new("secret", tags: ["private"])
    exposes = [news, weather, secret].to_h { |d| [d, writer.expose_object(d)] }

    # Allowed: states flow. Not allowed: refused, and never exposed.
    news_obs = reader.observe_object(news)
    weather_obs = reader.observe_object(weather)
    secret_obs = reader.observe_object(secret)
    sinks = [news, weather].to_h { |d| [d, exposes[d].next(timeout: T) || flunk("#{d} never assigned")] }
    sinks.each { |d, sink| sink.send_json("#{d.value} 1") }
    assert_equal "news 1", state_where(news_obs, &:synchronized?).json
    assert_equal "weather 1", state_where(weather_obs, &:synchronized?).json
    e = assert_raises(Hakuban::RefusedError) { secret_obs.next(timeout: T) }
    assert_match(/permission denied: "reader"/, e.message)
    assert_equal Hakuban::RESULT_CODES[:HAKUBAN_ERR_REFUSED], e.code
    assert_equal :refused, secret_obs.status
    assert_nil exposes[secret].try_next, "a refused observer got the object exposed"

    # Narrower rules (a String of JSON) apply to the open link at once: the
    # reader may observe the weather only; its news contract is refused and
    # the writer's news assignment ends.
    narrow = reader_rule.merge("observe" => { "objects" => [{ "json" => "weather", "tags" => ["public"] }] })
    assert_same listener, listener.set_auth(JSON.generate({ "clients" => [writer_rule, narrow] }))
    e, last = refusal_of(news_obs)
    assert_match(/permission denied: "reader"/, e.message)
    refute last.synchronized?, "a state after the revocation is synchronized: #{last.inspect}" if last
    assert_equal :refused, news_obs.status
    assert sinks[news].wait_revoked(timeout: T), "the news exposer kept its assignment"
    sinks[weather].send_json("weather 2")
    assert_equal "weather 2", state_where(weather_obs) { |st| st.json == "weather 2" }.json

    # Bad rules raise InvalidConfigError and keep the rules in force: sports
    # (tag "public", allowed before the narrowing) is still refused.
    e = assert_raises(Hakuban::InvalidConfigError) { listener.set_auth("{not json") }
    assert_match(/auth_json/, e.message)
    assert_equal Hakuban::RESULT_CODES[:HAKUBAN_ERR_INVALID_CONFIG], e.code
    assert_raises(Hakuban::InvalidConfigError) { listener.auth = { "clients" => 7 } }
    assert_raises(Hakuban::InvalidConfigError) { listener.auth = { "clients" => [reader_rule.merge("bogus" => 1)] } }
    assert_raises(ArgumentError) { listener.set_auth(42) }
    sports_obs = reader.observe_object(OD.new("sports", tags: ["public"]))
    e, = refusal_of(sports_obs)
    assert_match(/permission denied: "reader"/, e.message)
    assert_equal 1, rc.status.connects, "a failed set_auth touched the reader's link"

    # The reader's token goes: its link is closed for good (4002), the
    # writer's stays up.
    listener.auth = { "clients" => [writer_rule] }
    assert rc.wait(:refused, timeout: T).refused?
    assert_match(/auth refused/, rc.last_error)
    assert_match(/4002/, rc.last_error)
    st = wc.status
    assert st.connected?, "the writer lost its link: #{wc.last_error}"
    assert_equal 1, st.connects
  end

  # auth: as a String of JSON; an unknown or missing token is refused for
  # good; auth = nil lifts the rules (every client may do everything); bad
  # rules make listen raise.
  def test_listener_auth_from_a_string_and_lifted
    Hakuban.log_level = :off
    up = exchange(name: "up")
    e = assert_raises(Hakuban::InvalidConfigError) { up.listen(auth: '{"clients": [{"name": "x"}]}') }
    assert_match(/auth_json/, e.message)
    assert_raises(ArgumentError) { up.listen(auth: :everyone) }
    assert_empty up.listeners
    listener = up.listen(auth: '{"clients": [{"name": "only", "token": "t", "observe": "*", "expose": "*"}]}')
    stranger = exchange(name: "stranger").connect(listener.url, token: "not-t", **FAST)
    assert stranger.wait(:refused, timeout: T).refused?
    assert_match(/auth refused/, stranger.last_error)
    anonymous = exchange(name: "anonymous").connect(listener.url, **FAST)
    assert anonymous.wait(:refused, timeout: T).refused?

    listener.auth = nil
    free = exchange(name: "free")
    assert free.connect(listener.url, **FAST).wait(:connected, timeout: T)
    d = OD.new("anything", tags: ["private"])
    observe = free.observe_object(d)
    up.expose_object(d) { |expose| expose.next(timeout: T).send_json("open") }
    assert_equal "open", state_where(observe) { true }.json
    listener.close
    assert_raises(Hakuban::ClosedError) { listener.set_auth(nil) }
  end

  # Connector#to_io is readable exactly while the status changed since it
  # was last read: IO.select wakes when the link comes up and when it goes
  # down, and the status read then is the new one.
  def test_connector_to_io_for_io_select
    up = exchange(name: "up")
    listener = up.listen(address: "127.0.0.1:0")
    c = exchange(name: "down").connect(listener.url, **FAST)
    io = c.to_io
    assert_same io, c.to_io
    # the link comes up (a change since the connector was made)
    assert IO.select([c], nil, nil, T), "the connector's IO never became readable"
    status = c.wait(:connected, timeout: T) or flunk "never connected: #{c.last_error}"
    assert_equal 1, status.connects
    assert_nil IO.select([c], nil, nil, 0), "readable although the wait read the status"
    assert_equal :connected, c.status.state
    assert_nil IO.select([c], nil, nil, 0)
    # the upstream goes away: readable again; the status read then is new
    listener.close
    assert IO.select([c], nil, nil, T), "the IO did not become readable when the link went down"
    refute_equal :connected, c.status.state
    c.close
    assert io.closed?
    assert_raises(Hakuban::ClosedError) { c.to_io }
  end

  # SPEC 2.1 (lazy exposing) between two exchanges through the router: the
  # exposer gets its sink only once a remote observer exists, and loses it
  # when the observer goes.
  def test_lazy_expose_through_the_router
    router = start_router
    a = linked(router, "a")
    b = linked(router, "b")
    kitchen = OD.new({ "room" => "kitchen" }, tags: ["rooms"])
    expose = a.expose_object(kitchen)

    # A barrier: once b receives the probe's state, a's declarations made
    # before it (the kitchen's expose) have reached the router.
    probe = OD.new({ "probe" => "a" })
    a.expose_object(probe) do |probe_expose|
      b.observe_object(probe) do |probe_observe|
        probe_expose.next(timeout: T).send_json("through")
        assert_equal "through", probe_observe.next(timeout: T).json
      end
    end
    assert_nil expose.try_next, "assigned with nobody observing"
    assert_equal :no_observers, expose.status

    observe = b.observe_object(kitchen)
    sink = expose.next(timeout: T)
    assert_instance_of Hakuban::ObjectStateSink, sink
    assert_equal kitchen, sink.descriptor
    sink.send_json({ "celsius" => 21.5 })
    st = observe.next(timeout: T)
    assert_equal({ "celsius" => 21.5 }, st.json)
    assert st.synchronized?
    assert_equal :active, observe.status

    observe.close
    assert sink.wait_revoked(timeout: T), "not revoked after the remote observer left"
    assert_raises(Hakuban::RevokedError) { sink << "nobody wants this" }
  end

  # SPEC 2.2 between two Ruby processes: both tag-expose; the elected one is
  # killed (SIGKILL: no goodbye), and the observer gets states from the
  # other.
  def test_election_and_failover_between_ruby_processes
    router = start_router
    ex = linked(router, "observer")
    kitchen = OD.new({ "room" => "kitchen" }, tags: ["rooms"])
    observe = ex.observe_object(kitchen)

    first = start_ruby(EXPOSER, router.url)
    first.expect(/ready/)
    from_first = state_where(observe) { |s| s.synchronized? && s.json["pid"] == first.pid }

    second = start_ruby(EXPOSER, router.url)
    second.expect(/ready/)
    # The second process's tag expose reached the router before its probe.
    ex.observe_object({ "probe" => second.pid }) { |p| assert_equal "here", p.next(timeout: T).json }

    # Exactly one of them is elected: the newest state says which.
    latest = state_where(observe, &:synchronized?)
    elected, standby = latest.json["pid"] == first.pid ? [first, second] : [second, first]
    assert_includes [first.pid, second.pid], latest.json["pid"]
    assert_operator latest.version <=> from_first.version, :>=, 0

    elected.kill(:KILL)
    taken_over = state_where(observe) { |s| s.synchronized? && s.json["pid"] == standby.pid }
    assert taken_over.json["n"].positive?
    # It goes on producing: newer states keep coming from the standby.
    more = state_where(observe) { |s| s.synchronized? && s.json["n"] > taken_over.json["n"] }
    assert_equal standby.pid, more.json["pid"]
    assert_newer more.version, taken_over.version
  end

  # The synchronized flag when the router dies: the observer's state turns
  # unsynchronized; after the router comes back on the same address, both
  # sides reconnect by themselves and the observer converges.
  def test_sync_flag_when_the_router_dies_and_comes_back
    router = start_router
    a = linked(router, "a")
    b = linked(router, "b")
    d = OD.new({ "sensor" => 1 })
    expose = a.expose_object(d)
    producer = Thread.new do
      n = 0
      expose.each do |sink|
        until sink.revoked?
          sink.send_json({ "n" => n += 1 })
          sink.wait_revoked(timeout: 0.02)
        end
      rescue Hakuban::RevokedError
        next
      ensure
        sink.close
      end
    end
    observe = b.observe_object(d)
    fresh = state_where(observe, &:synchronized?)

    router.kill
    stale = state_where(observe) { |s| !s.synchronized? }
    assert_operator stale.json["n"], :>=, fresh.json["n"]
    eventually(message: "the unsynchronized age never grew") { observe.current.unsynchronized_age > 0.02 }

    router.restart
    back = state_where(observe) { |s| s.synchronized? && s.json["n"] > stale.json["n"] }
    assert_newer back.version, stale.version
    assert_equal 2, a.connector.status.connects
    assert_equal 2, b.connector.status.connects
  ensure
    expose&.close
    producer&.join(T)
  end

  # Tag contracts across the router: a tag exposer in one exchange serves
  # objects observed in a second, a tag observer in a third sees them all,
  # and their disappearance.
  def test_tag_contracts_through_the_router
    router = start_router
    producer_ex = linked(router, "producer")
    consumer_ex = linked(router, "consumer")
    watcher_ex = linked(router, "watcher")
    rooms = [1, 2].map { |i| OD.new({ "room" => i }, tags: ["rooms"]) }

    expose = producer_ex.expose_tag("rooms", capacity: 2)
    watch = watcher_ex.observe_tag("rooms")
    observers = rooms.map { |d| consumer_ex.observe_object(d) }

    sinks = 2.times.map { expose.next(timeout: T) or flunk "no assignment for a tagged object" }
    assert_equal rooms.to_set, sinks.map(&:descriptor).to_set
    sinks.each { |s| s.send_json(s.descriptor.value["room"] * 10) }
    observers.each_with_index do |o, i|
      assert_equal (i + 1) * 10, state_where(o) { |s| !s.data.empty? }.json
    end

    seen = {}
    deadline = monotonic + T
    until seen.size == 2
      flunk "the tag observer saw only #{seen.keys}" if monotonic > deadline
      ev = watch.next(timeout: T) or next
      seen[ev.descriptor] = ev.state.json if !ev.gone? && ev.state && !ev.state.data.empty?
    end
    assert_equal({ rooms[0] => 10, rooms[1] => 20 }, seen)

    # Room 1 is no longer observed: its exposer is revoked, the tag observer
    # is told it is gone.
    observers[0].close
    gone = state_where_event(watch) { |ev| ev.gone? }
    assert_equal rooms[0], gone.descriptor
    assert sinks.find { |s| s.descriptor == rooms[0] }.wait_revoked(timeout: T)
    refute sinks.find { |s| s.descriptor == rooms[1] }.revoked?
  end

  def state_where_event(watch, timeout: T)
    deadline = monotonic + timeout
    loop do
      left = deadline - monotonic
      flunk "no matching event within #{timeout} s" unless left.positive?
      ev = watch.next(timeout: left)
      return ev if ev && yield(ev)
    end
  end

  # Ruby with another language through one router: the C example exposer
  # (examples/c/exposer.c) and a Ruby observer.
  def test_ruby_observer_with_the_c_example_exposer
    router = start_router
    exposer = c_example("exposer") or skip "no C example exposer (cmake --build build --target hakuban_example_exposer)"
    c = spawn_child(exposer, router.url)
    c.expect(/connected to/)
    ex = linked(router, "ruby-observer")
    kitchen = OD.new({ "room" => "kitchen" }, tags: ["temperatures"])
    observe = ex.observe_object(kitchen)
    c.expect(/assigned \(token \d+\)/)
    readings = 3.times.map { state_where(observe, &:synchronized?).json.fetch("celsius") }
    assert_equal readings.sort, readings
    assert_equal 3, readings.uniq.size
    observe.close
    c.expect(/assignment ended: nobody observes/)
  end

  # And a Python process observing a Ruby exposer, when the Python binding
  # (bindings/python) can connect.
  def test_python_observer_with_a_ruby_exposer
    python = ENV.fetch("PYTHON", "python3")
    src = File.join(ROOT, "bindings", "python", "src")
    env = { "PYTHONPATH" => src, "HAKUBAN_LIBRARY" => File.expand_path(Hakuban::Native.library_path) }
    probe = system(env, python, "-c", "import hakuban; hakuban.Exchange.connect", out: File::NULL, err: File::NULL)
    skip "no Python binding with a connector (bindings/python)" unless probe
    router = start_router
    ex = linked(router, "ruby-exposer")
    d = OD.new({ "from" => "ruby" }, tags: ["mixed"])
    expose = ex.expose_object(d)
    script = <<~PY
      import sys, hakuban
      with hakuban.Exchange("python-observer") as ex:
          ex.connect(sys.argv[1], min_backoff=0.02).wait_connected(timeout=10)
          obs = ex.observe_object(hakuban.ObjectDescriptor({"from": "ruby"}, tags=["mixed"]))
          st = obs.recv(timeout=10)
          while not st.synchronized or st.json()["n"] < 3:
              st = obs.recv(timeout=10)
          print("python got", st.json()["n"], flush=True)
    PY
    py = spawn_child(python, "-c", script, router.url, env: env)
    sink = expose.next(timeout: T)
    n = 0
    until sink.revoked?
      sink.send_json({ "n" => n += 1 })
      sink.wait_revoked(timeout: 0.02)
    end
    py.expect(/python got \d+/)
    assert py.wait.success?, py.output
  end

  # The C example programs: build/examples/c/hakuban_example_<role>, built
  # with CMake when missing and the build directory is configured.
  def c_example(role)
    path = File.join(ROOT, "build", "examples", "c", "hakuban_example_#{role}")
    return path if File.executable?(path)
    return nil unless File.exist?(File.join(ROOT, "build", "CMakeCache.txt"))

    system("cmake", "--build", File.join(ROOT, "build"), "--target", "hakuban_example_#{role}", out: File::NULL, err: File::NULL)
    File.executable?(path) ? path : nil
  end

  # The FFI struct layouts against the header (compiled with the system's
  # C compiler), and the connector states against the enum.
  def test_structs_and_states_match_header
    header = File.read(HEADER)
    body = header[/enum hakuban_connector_state\s*\{(.*?)\};/m, 1].gsub(%r{/\*.*?\*/}m, "")
    from_header = body.scan(/HAKUBAN_CONNECTOR_(\w+)\s*=\s*(\d+)/).to_h { |n, v| [Integer(v), n.downcase.to_sym] }
    assert_equal from_header, Hakuban::CONNECTOR_STATES.each_with_index.to_h { |s, i| [i, s] }

    cc = ENV.fetch("CC", "cc")
    skip "no C compiler" unless system(cc, "--version", out: File::NULL, err: File::NULL)
    structs = {
      "hakuban_connector_options" => Hakuban::Native::ConnectorOptions,
      "hakuban_connector_status_info" => Hakuban::Native::ConnectorStatusInfo,
      "hakuban_listener_options" => Hakuban::Native::ListenerOptions,
      "hakuban_exchange_options" => Hakuban::Native::ExchangeOptions
    }
    Dir.mktmpdir do |dir|
      src = File.join(dir, "layout.c")
      lines = structs.flat_map do |name, klass|
        ["printf(\"#{name} size %zu\\n\", sizeof(#{name}));"] +
          klass.members.map { |m| "printf(\"#{name} #{m} %zu\\n\", offsetof(#{name}, #{m}));" }
      end
      File.write(src, "#include <stddef.h>\n#include <stdio.h>\n#include <hakuban.h>\nint main(void) {\n#{lines.join("\n")}\nreturn 0;\n}\n")
      exe = File.join(dir, "layout")
      assert system(cc, "-I", File.dirname(HEADER), "-o", exe, src), "cannot compile the layout probe"
      from_c = IO.popen([exe], &:read).lines.to_h { |l| n, m, v = l.split; [[n, m], Integer(v)] }
      structs.each do |name, klass|
        assert_equal from_c.fetch([name, "size"]), klass.size, "sizeof(#{name})"
        klass.members.each { |m| assert_equal from_c.fetch([name, m.to_s]), klass.offset_of(m), "offsetof(#{name}, #{m})" }
      end
    end
  end
end
