# frozen_string_literal: true

require_relative "lib/hakuban/version"

native = File.join(__dir__, "lib", "hakuban", "native", "libhakuban.so")
# `gem build` in a checkout bundles the library, building it when missing
# (`rake gem` rebuilds it when stale). HAKUBAN_GEM_SKIP_NATIVE=1 makes a gem
# without it (users then set HAKUBAN_LIBRARY).
if !File.exist?(native) && ENV["HAKUBAN_GEM_SKIP_NATIVE"].to_s.empty? && File.exist?(File.join(__dir__, "native_build.rb"))
  require_relative "native_build"
  HakubanNativeBuild.build
end

Gem::Specification.new do |spec|
  spec.name = "hakuban"
  spec.version = Hakuban::VERSION
  spec.summary = "Share data objects between processes: expose, observe, latest state wins"
  spec.description = <<~DESC
    Ruby binding (ffi) of libhakuban: processes expose data objects and others
    observe their newest state; hakuban elects one exposer per object, produces
    nothing nobody observes and fails over when an exposer goes away.
  DESC
  spec.authors = ["hakuban contributors"]
  spec.license = "MIT"
  spec.homepage = "https://github.com/hakuban/hakuban"
  spec.required_ruby_version = ">= 3.1" # Process._fork (the fork guard)

  spec.files = Dir[File.join(__dir__, "lib", "**", "*.rb")].map { |f| f.delete_prefix("#{__dir__}/") } +
               %w[README.md] + Dir[File.join(__dir__, "examples", "*.rb")].map { |f| f.delete_prefix("#{__dir__}/") }
  if File.exist?(native)
    spec.files << "lib/hakuban/native/libhakuban.so"
    # A gem carrying a Linux shared library is for this platform only.
    spec.platform = Gem::Platform.local
  end
  spec.require_paths = ["lib"]

  # >= 1.15: Debian 12's ruby-ffi (1.15.5) must satisfy it for offline installs.
  spec.add_dependency "ffi", ">= 1.15"
  spec.add_development_dependency "minitest", ">= 5"
  spec.add_development_dependency "rake", ">= 13"
end
