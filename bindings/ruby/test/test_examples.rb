# frozen_string_literal: true

require_relative "helper"

# Every example runs to completion (they are documentation: they must work).
class TestExamples < Minitest::Test
  EXAMPLES = File.expand_path("../examples", __dir__)

  Dir[File.join(EXAMPLES, "*.rb")].sort.each do |path|
    name = File.basename(path, ".rb")
    next if name.start_with?("router_") # need a router: below
    define_method("test_example_#{name}") do
      status, out = run_ruby(File.read(path), timeout: 30)
      assert status.success?, "#{name} failed:\n#{out}"
      refute_empty out
    end
  end

  # The router pair, through a real router: the observer takes 3 readings
  # and exits; the exposer, lazy, stops producing when it has gone and ends
  # quietly on Ctrl-C.
  def test_router_examples
    router = start_router
    exposer = start_ruby(File.read(File.join(EXAMPLES, "router_exposer.rb")), router.url)
    exposer.expect(/exposer: connected to #{Regexp.escape(router.url)}/)
    observer = start_ruby(File.read(File.join(EXAMPLES, "router_observer.rb")), router.url, "3")
    assert observer.wait(timeout: 30).success?, observer.output
    assert_equal 3, observer.output.scan(/observer: kitchen is [\d.]+ C/).size, observer.output
    exposer.expect(/exposer: assigned/)
    exposer.expect(/exposer: assignment ended: nobody observes/)
    Process.kill(:INT, exposer.pid)
    exposer.expect(/exposer: interrupted, bye/, timeout: 5)
    assert exposer.wait.success?, exposer.output
  end
end
