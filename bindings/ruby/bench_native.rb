# frozen_string_literal: true

require "ffi"
require "rbconfig"

# Builds and binds bench_exposer.c (see there): used by bench.rb and the
# mixed-language test. BenchNative.build(dir) returns the module, or nil
# when there is no C compiler.
module BenchNative
  SOURCE = File.expand_path("bench_exposer.c", __dir__)

  def self.build(dir)
    cc = ENV["CC"] || %w[cc gcc].find { |c| system(c, "--version", out: File::NULL, err: File::NULL) }
    return nil unless cc

    so = File.join(dir, "bench_exposer.so")
    system(cc, "-O2", "-shared", "-fPIC", "-pthread", "-o", so, SOURCE) or return nil
    Module.new do
      extend FFI::Library
      ffi_lib so
      attach_function :bench_exposer_start, %i[pointer pointer pointer uint64 size_t uint64], :int
      attach_function :bench_exposer_stop, [], :long_long, blocking: true
    end
  end

  # The address of a function of the libhakuban Ruby loaded.
  def self.fn(name)
    Hakuban::Native.load!
    Hakuban::Native.ffi_libraries.each do |lib|
      f = lib.find_function(name.to_s)
      return f if f
    end
    raise "#{name} not found"
  end

  # Starts the native exposer writing size-byte states through sink.
  def self.start(helper, sink, size: 64, rate: 0)
    rc = helper.bench_exposer_start(fn(:hakuban_object_state_new), fn(:hakuban_object_state_sink_send),
                                    fn(:hakuban_object_state_drop), sink.handle, size, rate)
    raise "bench_exposer_start failed" unless rc.zero?
  end
end
