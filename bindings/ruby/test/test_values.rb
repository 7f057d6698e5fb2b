# frozen_string_literal: true

require_relative "helper"

# Descriptors and states: plain Ruby values computed through the library.
class TestValues < Minitest::Test
  OD = Hakuban::ObjectDescriptor
  TD = Hakuban::TagDescriptor

  def test_object_identity_is_by_value
    a = OD.new({ "a" => 1, "b" => 2 }, tags: ["t2", "t1", "t1"])
    b = OD.new({ b: 2, a: 1 }, tags: [TD.new("t1"), "t2"])
    assert_equal a, b
    assert a.eql?(b)
    assert_equal a.hash, b.hash
    assert_equal({ a => 1 }, { b => 1 })
    assert_equal '{"a":1,"b":2}', a.json
    assert_equal [TD.new("t1"), TD.new("t2")], a.tags
    assert_equal({ "a" => 1, "b" => 2 }, a.value)
    assert_equal '{"json":{"a":1,"b":2},"tags":["t1","t2"]}', a.key
    assert a.frozen?
  end

  def test_tags_are_part_of_identity
    refute_equal OD.new("x"), OD.new("x", tags: ["t"])
    refute_equal OD.new("x", tags: ["t"]), OD.new("x", tags: ["u"])
    refute_equal OD.new(1), OD.new("1")
  end

  def test_canonical_json
    assert_equal '{"a":[1,2],"b":{"c":null}}', OD.from_json(' { "b" : {"c": null}, "a": [1, 2] } ').json
    big = 2**60 + 1
    assert_equal big.to_s, OD.new(big).json
    assert_equal big, OD.new(big).value
    assert_equal '{"room":12}', TD.new({ "room" => 12 }).json
    assert_equal TD.new([1, 2]), TD.from_json("[1, 2]")
  end

  def test_invalid_descriptors_raise_at_the_call
    assert_raises(Hakuban::InvalidDescriptorError) { OD.from_json("{nope") }
    assert_raises(Hakuban::InvalidDescriptorError) { OD.from_json("") }
    assert_raises(Hakuban::InvalidDescriptorError) { OD.from_json("1", tags: ["[1,"]) }
    assert_raises(Hakuban::InvalidDescriptorError) { OD.new(Float::NAN) }
    assert_raises(Hakuban::InvalidDescriptorError) { TD.new(Float::INFINITY) }
    assert_raises(Hakuban::TooManyTagsError) { OD.new("x", tags: (1..65).to_a) }
    OD.new("x", tags: (1..64).to_a) # the limit itself is fine
    assert_raises(Hakuban::DescriptorTooLargeError) { OD.new("x" * 70_000) }
    assert_raises(Hakuban::DescriptorTooLargeError) { TD.new("x" * 70_000) }
  end

  def test_coerce
    d = OD.new("x")
    assert_same d, OD.coerce(d)
    assert_equal OD.new("x", tags: ["t"]), OD.coerce("x", ["t"])
    assert_raises(ArgumentError) { OD.coerce(d, ["t"]) }
    t = TD.new("t")
    assert_same t, TD.coerce(t)
    assert_equal t, TD.coerce("t")
  end

  def test_states
    s = Hakuban::ObjectState.new("bytes", format: ["zstd"], version: [1, 2])
    assert_equal "bytes", s.data
    assert_equal ["zstd"], s.format
    assert_equal [1, 2], s.version
    refute s.synchronized?
    assert_equal 0.0, s.unsynchronized_age
    assert_raises(Hakuban::WrongFormatError) { s.json }

    j = Hakuban::ObjectState.json({ "t" => 21.5, "list" => [1, nil] })
    assert_equal ["JSON"], j.format
    assert_nil j.version
    assert_equal({ "t" => 21.5, "list" => [1, nil] }, j.json)
    assert j.json.frozen?
    assert_equal 7, Hakuban::ObjectState.json(7).json
  end
end
