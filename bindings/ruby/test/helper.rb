# frozen_string_literal: true

require "minitest/autorun"
require "rbconfig"
require "timeout"
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

  # A fresh exchange per test, closed afterwards.
  def exchange(**opts)
    ex = Hakuban::Exchange.new(**opts)
    (@exchanges ||= []) << ex
    ex
  end

  def teardown
    @exchanges&.each(&:close)
    super
  end
end

Minitest::Test.include(HakubanTest)
