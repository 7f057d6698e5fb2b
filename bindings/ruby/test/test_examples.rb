# frozen_string_literal: true

require_relative "helper"

# Every example runs to completion (they are documentation: they must work).
class TestExamples < Minitest::Test
  Dir[File.expand_path("../examples/*.rb", __dir__)].sort.each do |path|
    name = File.basename(path, ".rb")
    define_method("test_example_#{name}") do
      status, out = run_ruby(File.read(path), timeout: 30)
      assert status.success?, "#{name} failed:\n#{out}"
      refute_empty out
    end
  end
end
