# frozen_string_literal: true

require_relative "helper"
require "tmpdir"
require_relative "../bench_native"

# A C exposer and a Ruby observer on one exchange, in one process:
# bench_exposer.c writes through the C API on its own pthread, Ruby reads.
# (Other languages in processes of their own, through a router, are in
# test_network.rb.)
class TestMixedLanguage < Minitest::Test
  def test_c_exposer_ruby_observer
    Dir.mktmpdir do |dir|
      helper = BenchNative.build(dir) or skip "needs a C compiler"
      ex = exchange(name: "mixed")
      observe = ex.observe_object("from C")
      sink = ex.expose_object("from C").next(timeout: 5)
      BenchNative.start(helper, sink, size: 64, rate: 2000)
      versions = []
      begin
        observe.each do |state|
          assert_equal "x" * 64, state.data
          assert state.synchronized?
          assert_equal [], state.format
          versions << state.version
          break if versions.size == 20
        end
      ensure
        sent = helper.bench_exposer_stop
      end
      assert_operator sent, :>=, 20
      assert_equal versions.sort, versions
      assert_equal 20, versions.uniq.size
      observe.close # the C thread's sink is revoked; it stops by itself
      assert sink.wait_revoked(timeout: 5)
    end
  end
end
