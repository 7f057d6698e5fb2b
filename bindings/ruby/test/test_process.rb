# frozen_string_literal: true

require_relative "helper"
require "tmpdir"

# What needs a process of its own: Ctrl-C, fork, loading the library.
class TestProcess < Minitest::Test
  def test_sigint_while_waiting_exits_within_half_a_second
    script = <<~RUBY
      require "hakuban"
      ex = Hakuban::Exchange.new
      contract = ex.observe_object("nobody-exposes")
      main = Thread.main
      Thread.new do
        # "sleep" = blocked without the GVL: inside the library's wait.
        Thread.pass until main.status == "sleep"
        $stdout.puts "waiting"
        $stdout.flush
      end
      begin
        contract.next
        puts "returned"
      rescue Interrupt
        puts "interrupted"
      end
    RUBY
    IO.popen([RbConfig.ruby, "-I", LIB, "-e", script], err: %i[child out]) do |io|
      line = Timeout.timeout(20) { io.gets }
      assert_equal "waiting\n", line
      t0 = monotonic
      Process.kill(:INT, io.pid)
      rest = Timeout.timeout(5) { io.read }
      elapsed = monotonic - t0
      assert_equal "interrupted\n", rest
      assert_operator elapsed, :<, 0.5, "Ctrl-C took #{elapsed.round(3)} s"
    end
    assert $?.success?, $?.inspect
  end

  def test_uncaught_sigint_kills_a_waiting_process
    script = <<~RUBY
      require "hakuban"
      c = Hakuban::Exchange.new.observe_object("x")
      main = Thread.main
      Thread.new { Thread.pass until main.status == "sleep"; puts "waiting"; $stdout.flush }
      c.each { }
    RUBY
    IO.popen([RbConfig.ruby, "-I", LIB, "-e", script], err: File::NULL) do |io|
      assert_equal "waiting\n", Timeout.timeout(20) { io.gets }
      t0 = monotonic
      Process.kill(:INT, io.pid)
      Timeout.timeout(5) { io.read }
      assert_operator monotonic - t0, :<, 0.5
    end
    assert_equal Signal.list["INT"], $?.termsig, $?.inspect
  end

  def test_fork_after_load_raises_fork_error_in_the_child
    status, out = run_ruby(<<~RUBY)
      require "hakuban"
      ex = Hakuban::Exchange.new
      contract = ex.observe_object("x")
      pid = fork do
        begin
          contract.try_next
          puts "child: no error"
        rescue Hakuban::ForkError => e
          puts "child: ForkError: \#{e.message}"
        end
        begin
          Hakuban::Exchange.new
        rescue Hakuban::ForkError
          puts "child: ForkError again"
        end
        # A normal exit runs the finalizers of the inherited objects: they
        # must not call into the library (that would hang the child).
        exit 3
      end
      Process.wait(pid)
      puts "child exit \#{$?.exitstatus}"
      contract.close
      ex.close
      puts "parent fine"
    RUBY
    assert status.success?, out
    assert_match(/child: ForkError: hakuban cannot be used in a process forked after the library was loaded/, out)
    assert_match(/child: ForkError again/, out)
    assert_match(/child exit 3/, out)
    assert_match(/parent fine/, out)
  end

  def test_fork_before_load_works
    status, out = run_ruby(<<~RUBY)
      require "hakuban"
      raise "loaded at require" if Hakuban::Native.loaded?
      def roundtrip(who)
        Hakuban::Exchange.open do |ex|
          ex.expose_object("x") do |e|
            ex.observe_object("x") do |o|
              e.next(timeout: 5) << who
              puts o.next(timeout: 5).data
            end
          end
        end
      end
      pid = fork { roundtrip("child") }
      Process.wait(pid)
      roundtrip("parent")
    RUBY
    assert status.success?, out
    assert_equal "child\nparent\n", out
  end

  def test_the_library_is_loaded_lazily
    status, out = run_ruby(<<~RUBY)
      require "hakuban"
      maps = -> { File.read("/proc/self/maps").include?("libhakuban") }
      puts [Hakuban::Native.loaded?, maps.call].inspect
      d = Hakuban::ObjectDescriptor.new("x")
      puts [Hakuban::Native.loaded?, maps.call].inspect
    RUBY
    assert status.success?, out
    assert_equal "[false, false]\n[true, true]\n", out
  end

  def test_hakuban_library_overrides_the_bundled_library
    script = <<~RUBY
      require "hakuban"
      begin
        Hakuban::Exchange.new
      rescue Hakuban::LibraryError => e
        puts e.message
      end
      begin
        Hakuban::ObjectDescriptor.new("x") # still refused, not half-loaded
      rescue Hakuban::LibraryError => e
        puts "again"
      end
    RUBY
    with_env("HAKUBAN_LIBRARY" => "/nonexistent/libhakuban.so") do
      status, out = run_ruby(script)
      assert status.success?, out
      assert_match(%r{libhakuban not found at /nonexistent/libhakuban.so}, out)
      assert_match(/again/, out)
    end
  end

  def test_a_library_of_another_abi_is_refused
    cc = ENV.fetch("CC", "cc")
    skip "no C compiler" unless system(cc, "--version", out: File::NULL, err: File::NULL)
    Dir.mktmpdir do |dir|
      src = File.join(dir, "fake.c")
      File.write(src, <<~C)
        #include <stdint.h>
        uint32_t hakuban_abi_version(void) { return 99; }
        const char *hakuban_version(void) { return "9.9.9"; }
      C
      lib = File.join(dir, "libhakuban.so")
      assert system(cc, "-shared", "-fPIC", "-o", lib, src), "cannot compile the fake library"
      with_env("HAKUBAN_LIBRARY" => lib) do
        status, out = run_ruby(<<~RUBY)
          require "hakuban"
          begin
            Hakuban::Exchange.new
          rescue Hakuban::LibraryError => e
            puts e.message
          end
        RUBY
        assert status.success?, out
        assert_match(/has ABI version 99 \(library 9\.9\.9\); this gem \(hakuban #{Regexp.escape(Hakuban::VERSION)}\) needs ABI #{Hakuban::ABI_VERSION}/, out)
      end
    end
  end

  private

  def with_env(vars)
    old = vars.keys.to_h { |k| [k, ENV[k]] }
    vars.each { |k, v| ENV[k] = v }
    yield
  ensure
    old.each { |k, v| ENV[k] = v }
  end
end
