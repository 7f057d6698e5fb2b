# frozen_string_literal: true

require_relative "helper"

# The Ruby tables (result codes, statuses, versions) against the header.
class TestErrors < Minitest::Test
  def header
    @header ||= File.read(HEADER)
  end

  # name => value of every member of the C enum named enum_name.
  def header_enum(enum_name)
    body = header[/enum #{enum_name}\s*\{(.*?)\};/m, 1] or flunk "enum #{enum_name} not in #{HEADER}"
    body = body.gsub(%r{/\*.*?\*/}m, "")
    body.scan(/(HAKUBAN_\w+)\s*=\s*(-?\d+)/).to_h { |n, v| [n.to_sym, Integer(v)] }
  end

  def test_result_code_table_matches_header
    from_header = header_enum("hakuban_result")
    refute_empty from_header
    assert_equal from_header, Hakuban::RESULT_CODES,
                 "Hakuban::RESULT_CODES differs from enum hakuban_result in include/hakuban.h"
  end

  def test_one_error_class_per_error_code
    errors = Hakuban::RESULT_CODES.select { |_, v| v.negative? }
    assert_equal errors.values.sort, Hakuban::ERRORS_BY_CODE.keys.sort
    classes = Hakuban::ERRORS_BY_CODE.values
    assert_equal classes.size, classes.uniq.size
    errors.each do |name, code|
      klass = Hakuban::ERRORS_BY_CODE.fetch(code)
      assert_operator klass, :<, Hakuban::Error
      expected = "#{name.to_s.delete_prefix("HAKUBAN_ERR_").split("_").map(&:capitalize).join}Error"
      assert_equal "Hakuban::#{expected}", klass.name
      e = assert_raises(klass) { Hakuban::Error.check(code) }
      assert_equal code, e.code
    end
  end

  def test_check_passes_non_errors_through
    %i[HAKUBAN_OK HAKUBAN_EMPTY HAKUBAN_END HAKUBAN_TIMEOUT].each do |n|
      rc = Hakuban::RESULT_CODES.fetch(n)
      assert_equal rc, Hakuban::Error.check(rc)
    end
  end

  def test_statuses_match_header
    from_header = header_enum("hakuban_status")
    expected = from_header.to_h { |name, v| [v, name.to_s.delete_prefix("HAKUBAN_STATUS_").downcase.to_sym] }
    assert_equal expected, Hakuban::STATUSES.each_with_index.to_h { |s, i| [i, s] }
  end

  def test_versions_match_header
    assert_equal Integer(header[/#define HAKUBAN_ABI_VERSION (\d+)/, 1]), Hakuban::ABI_VERSION
    assert_equal header[/#define HAKUBAN_VERSION "([^"]+)"/, 1], Hakuban::VERSION
    assert_equal Hakuban::ABI_VERSION, Hakuban.library_abi_version
    assert_equal Hakuban::VERSION, Hakuban.library_version
  end

  def test_library_errors_carry_the_library_message
    e = assert_raises(Hakuban::InvalidDescriptorError) { Hakuban::TagDescriptor.from_json("{oops") }
    assert_equal Hakuban::RESULT_CODES[:HAKUBAN_ERR_INVALID_DESCRIPTOR], e.code
    assert_match(/hakuban_tag_descriptor_new/, e.message)
  end

  def test_errors_from_other_threads_keep_their_own_message
    threads = 4.times.map do |i|
      Thread.new do
        200.times.map do
          Hakuban::Exchange.new(rebalance_threshold: 2 + i)
        rescue Hakuban::InvalidConfigError => e
          e.message
        end
      end
    end
    threads.each_with_index do |t, i|
      msgs = t.value
      assert(msgs.all? { |m| m.is_a?(String) && m.include?("RebalanceThreshold #{2 + i} ") }, msgs.uniq.inspect)
    end
  end
end
