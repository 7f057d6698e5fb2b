# frozen_string_literal: true

require "minitest/autorun"
require "rbconfig"
require "timeout"
require "tmpdir"
require "fileutils"
require "hakuban"

module HakubanTest
  LIB = File.expand_path("../lib", __dir__)
  ROOT = File.expand_path("../../..", __dir__)
  HEADER = File.join(ROOT, "include", "hakuban.h")

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Polls the block until it returns a truthy value (returned) or timeout
  # seconds pass (fails the test). For conditions nothing can notify us
  # of (finalizers having run, a snapshot changing); everything else waits
  # on the library.
  def eventually(timeout: 5, message: "condition not met in time")
    deadline = monotonic + timeout
    loop do
      v = yield
      return v if v
      flunk message if monotonic > deadline
      Thread.pass
      sleep 0.005
    end
  end

  # Waits until thread is blocked without the GVL (inside a blocking
  # library call, an IO.select or a Queue#pop: Thread#status "sleep").
  def wait_until_blocked(thread, timeout: 5)
    eventually(timeout: timeout, message: "thread never blocked") { thread.status == "sleep" || thread.status.nil? || thread.status == false }
  end

  # Runs script in a fresh Ruby with this gem's lib on the load path.
  # Returns [Process::Status, output (stdout+stderr)]. Kills it after
  # timeout seconds and fails the test (a hang is the bug these tests look
  # for).
  def run_ruby(script, timeout: 20)
    r, w = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-I", LIB, "-e", script, out: w, err: w, in: File::NULL)
    w.close
    out = +""
    reader = Thread.new { out << r.read }
    status = nil
    deadline = monotonic + timeout
    loop do
      _, status = Process.wait2(pid, Process::WNOHANG)
      break if status
      if monotonic > deadline
        Process.kill(:KILL, pid)
        Process.wait(pid)
        reader.join
        flunk "subprocess hung for #{timeout} s; output:\n#{out}"
      end
      sleep 0.01
    end
    reader.join
    [status, out]
  ensure
    r&.close
  end

  # A real hakuban-router process (cmd/router), on 127.0.0.1:0 unless told
  # otherwise: its address is read from --addr-file. Tests start it with
  # #start_router; teardown stops every router a test started (also when
  # the test failed), and an at_exit hook kills any left over.
  class Router
    LIVE = []
    at_exit { LIVE.dup.each(&:kill) }

    class << self
      # The router binary: $HAKUBAN_ROUTER, else build/hakuban-router (`make
      # router`), else one built with `go build` into a temporary directory
      # (once per run). nil when there is none and Go is missing.
      def binary
        return @binary if defined?(@binary)

        @binary = find_or_build
      end

      private

      def find_or_build
        env = ENV["HAKUBAN_ROUTER"].to_s
        return env unless env.empty?

        built = File.join(ROOT, "build", "hakuban-router")
        return built if File.executable?(built)

        dir = Dir.mktmpdir("hakuban-router-bin")
        at_exit { FileUtils.rm_rf(dir) }
        path = File.join(dir, "hakuban-router")
        go = ENV.fetch("GO", "go")
        ok = system(go, "build", "-o", path, "./cmd/router", chdir: ROOT, out: File::NULL, err: File::NULL)
        ok && File.executable?(path) ? path : nil
      rescue SystemCallError
        nil
      end
    end

    START_TIMEOUT = 15

    # "127.0.0.1:port" and "ws://127.0.0.1:port/".
    attr_reader :address, :url

    # args are more command-line arguments (for example --auth-file).
    def initialize(address = "127.0.0.1:0", args: [])
      @dir = Dir.mktmpdir("hakuban-router")
      @pid = nil
      @args = args
      start(address)
    end

    # Starts the process on address and waits until it listens.
    def start(address)
      raise "router already running" if @pid

      addr_file = File.join(@dir, "addr")
      FileUtils.rm_f(addr_file)
      @log = File.join(@dir, "router.log")
      @pid = Process.spawn(self.class.binary, "--listen", address, "--addr-file", addr_file,
                           "--log-level", "warn", "--ping-interval", "200ms", "--ping-timeout", "1s", *@args,
                           in: File::NULL, out: File::NULL, err: [@log, "a"])
      LIVE << self
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + START_TIMEOUT
      loop do
        text = File.exist?(addr_file) && File.read(addr_file)
        if text && !text.empty?
          @address = text.lines.first.strip
          @url = "ws://#{@address}/"
          return self
        end
        _, status = Process.wait2(@pid, Process::WNOHANG)
        if status
          @pid = nil
          raise "hakuban-router exited (#{status.inspect}) before listening:\n#{log}"
        end
        if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
          kill
          raise "hakuban-router did not listen within #{START_TIMEOUT} s:\n#{log}"
        end
        sleep 0.005
      end
    end

    # Starts it again on the same address, after #kill.
    def restart
      start(@address)
    end

    def alive?
      !@pid.nil?
    end

    # Kills the process (SIGKILL by default: no goodbye to its links) and
    # reaps it.
    def kill(signal = :KILL)
      pid = @pid or return
      @pid = nil
      LIVE.delete(self)
      begin
        Process.kill(signal, pid)
      rescue Errno::ESRCH
        nil
      end
      Process.wait(pid)
    rescue Errno::ECHILD
      nil
    end

    # Stops it gracefully (SIGTERM; SIGKILL after 10 s) and removes its files.
    def stop
      if (pid = @pid)
        begin
          Process.kill(:TERM, pid)
          deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
          sleep 0.01 until Process.wait(pid, Process::WNOHANG) || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        rescue Errno::ESRCH, Errno::ECHILD
          nil
        end
        kill
      end
      FileUtils.rm_rf(@dir)
    end

    # The router's standard error so far.
    def log
      File.exist?(@log) ? File.read(@log) : ""
    end
  end

  # A child process (Ruby or not) whose standard output is read line by line
  # in the background; #expect waits for a line. Killed in teardown.
  class Child
    attr_reader :pid

    def initialize(*argv, env: {})
      r, w = IO.pipe
      r.set_encoding(Encoding::UTF_8) # whatever the locale
      @pid = Process.spawn(env, *argv, in: File::NULL, out: w, err: w)
      w.close
      @all = [] # every line so far
      @pos = 0  # the next line #expect looks at
      @eof = false
      @lock = Mutex.new
      @cond = ConditionVariable.new
      @reader = Thread.new do
        r.each_line { |l| @lock.synchronize { @all << l; @cond.broadcast } }
      rescue IOError
        nil
      ensure
        r.close
        @lock.synchronize { @eof = true; @cond.broadcast }
      end
    end

    # Waits up to timeout seconds for a line matching pattern and returns
    # its MatchData (lines before it are skipped); fails the test on EOF or
    # timeout.
    def expect(pattern, timeout: 20)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @lock.synchronize do
        loop do
          while @pos < @all.size
            line = @all[@pos]
            @pos += 1
            m = pattern.match(line) and return m
          end
          raise Minitest::Assertion, "exited before printing #{pattern.inspect}; output:\n#{@all.join}" if @eof

          left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          raise Minitest::Assertion, "no line matching #{pattern.inspect} within #{timeout} s; output:\n#{@all.join}" unless left.positive?

          @cond.wait(@lock, left)
        end
      end
    end

    # Everything it printed so far.
    def output
      @lock.synchronize { @all.join }
    end

    def kill(signal = :KILL)
      return unless @pid

      begin
        Process.kill(signal, @pid)
      rescue Errno::ESRCH
        nil
      end
      wait
    end

    # Waits for it to exit (at most timeout seconds; then SIGKILL) and
    # returns its Process::Status.
    def wait(timeout: 10)
      return @status unless @pid

      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        _, @status = Process.wait2(@pid, Process::WNOHANG)
        break if @status

        if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
          Process.kill(:KILL, @pid)
          _, @status = Process.wait2(@pid)
          break
        end
        sleep 0.005
      end
      @pid = nil
      @reader.join(5)
      @status
    end
  end

  # Starts a router for this test (stopped in teardown).
  def start_router(address = "127.0.0.1:0", args: [])
    skip "no hakuban-router (make router, or Go to build it)" unless Router.binary
    r = Router.new(address, args: args)
    (@routers ||= []) << r
    r
  end

  # Starts a Ruby child running script with this gem's lib on the load path
  # (killed in teardown). The child gets Ruby's own SIGINT handling
  # (Interrupt) even when the suite runs as a shell's background job, which
  # ignores SIGINT (children inherit that).
  def start_ruby(script, *args, env: {})
    spawn_child(RbConfig.ruby, "-I", LIB, "-e", 'trap("INT", "DEFAULT")', "-e", script, *args, env: env)
  end

  # Starts any program as a Child (killed in teardown).
  def spawn_child(*argv, env: {})
    c = Child.new(*argv, env: env)
    (@children ||= []) << c
    c
  end

  # A fresh exchange per test, closed afterwards.
  def exchange(**opts)
    ex = Hakuban::Exchange.new(**opts)
    (@exchanges ||= []) << ex
    ex
  end

  def teardown
    @children&.each(&:kill)
    @exchanges&.each(&:close)
    @routers&.each(&:stop)
    super
  end
end

Minitest::Test.include(HakubanTest)
