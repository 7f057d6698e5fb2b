# frozen_string_literal: true

require "json"

module Hakuban
  # Turns a Ruby value into JSON text, as a descriptor error.
  def self.descriptor_json(value, what) # :nodoc:
    JSON.generate(value)
  rescue JSON::GeneratorError, TypeError => e
    raise InvalidDescriptorError.new("#{what} is not representable as JSON: #{e.message}",
                                     code: RESULT_CODES[:HAKUBAN_ERR_INVALID_DESCRIPTOR])
  end

  # A tag: any JSON value ("sensors", {"room" => 12}, [1, 2]).
  #
  # Tag descriptors are immutable Ruby values holding the canonical JSON the
  # library computed (sorted keys, no white space), so identity is by value:
  # two tags are == (and eql?, same hash) exactly when the library considers
  # them the same. They own no library handle.
  class TagDescriptor
    # The canonical JSON text.
    attr_reader :json

    # Makes a tag from a Ruby value (anything JSON.generate accepts).
    # Raises InvalidDescriptorError or DescriptorTooLargeError.
    def initialize(value)
      @json = TagDescriptor.canonical(Hakuban.descriptor_json(value, "the tag"))
      freeze
    end

    # Makes a tag from JSON text.
    def self.from_json(text)
      from_canonical(canonical(text.to_str))
    end

    # A TagDescriptor for tag: itself when it already is one.
    def self.coerce(tag)
      tag.is_a?(TagDescriptor) ? tag : new(tag)
    end

    # The canonical JSON of text, computed (and validated) by the library.
    def self.canonical(text) # :nodoc:
      s = Scratch.get
      Error.check(Native.hakuban_tag_descriptor_new(s.u64, text))
      h = s.u64.read_uint64
      begin
        Error.check(Native.hakuban_tag_descriptor_json(s.ptr, h))
        -s.ptr.read_pointer.read_string.force_encoding(Encoding::UTF_8)
      ensure
        Native.hakuban_tag_descriptor_drop(h)
      end
    end

    # A tag from JSON text known to be canonical (read from the library).
    def self.from_canonical(text) # :nodoc:
      tag = allocate
      tag.instance_variable_set(:@json, text)
      tag.freeze
    end

    # The tag's value, parsed from the canonical JSON (frozen).
    def value
      JSON.parse(@json, freeze: true)
    end

    def ==(other)
      other.is_a?(TagDescriptor) && other.json == @json
    end
    alias eql? ==

    def hash
      [TagDescriptor, @json].hash
    end

    def to_s
      @json
    end

    def inspect
      "#<Hakuban::TagDescriptor #{@json}>"
    end

    # Yields a library handle of this tag, dropped afterwards.
    def with_handle # :nodoc:
      s = Scratch.get
      Error.check(Native.hakuban_tag_descriptor_new(s.u64, @json))
      h = s.u64.read_uint64
      begin
        yield h
      ensure
        Native.hakuban_tag_descriptor_drop(h)
      end
    end
  end

  # An object's identity: a JSON value plus a set of tags.
  #
  #   Hakuban::ObjectDescriptor.new({"sensor" => 7}, tags: ["sensors", {"room" => 12}])
  #
  # Immutable; identity by value ({"a"=>1,"b"=>2} and {"b"=>2,"a"=>1} are the
  # same, tag order and duplicates do not matter), computed by the library,
  # so every language agrees. Usable as a Hash key. Owns no library handle.
  class ObjectDescriptor
    # The canonical JSON text of the value (without tags).
    attr_reader :json
    # The tags, sorted by their canonical JSON (frozen Array of TagDescriptor).
    attr_reader :tags
    # The identity: canonical {"json":...,"tags":[...]} (equal keys = same object).
    attr_reader :key

    # Makes a descriptor from a Ruby value and tags (TagDescriptors or
    # values). Raises InvalidDescriptorError, DescriptorTooLargeError or
    # TooManyTagsError.
    def initialize(value, tags: [])
      tag_texts = Array(tags).map do |t|
        t.is_a?(TagDescriptor) ? t.json : Hakuban.descriptor_json(t, "a tag")
      end
      ObjectDescriptor.read_into(self, nil, Hakuban.descriptor_json(value, "the descriptor"), tag_texts)
      freeze
    end

    # Makes a descriptor from JSON text and tags given as JSON texts.
    def self.from_json(text, tags: [])
      d = allocate
      read_into(d, nil, text.to_str, tags.map(&:to_str))
      d.freeze
    end

    # An ObjectDescriptor for descriptor (itself when it already is one), or
    # for a value with tags.
    def self.coerce(descriptor, tags = nil)
      if descriptor.is_a?(ObjectDescriptor)
        raise ArgumentError, "tags: given with an ObjectDescriptor (its tags are part of it)" if tags && !tags.empty?

        return descriptor
      end
      new(descriptor, tags: tags || [])
    end

    # Fills d from a library handle h, or from a new handle made from text
    # and tag_texts (dropped afterwards).
    def self.read_into(d, h, text = nil, tag_texts = nil) # :nodoc:
      s = Scratch.get
      own = h.nil?
      if own
        tags_ptr = nil
        unless tag_texts.empty?
          strs = tag_texts.map { |t| FFI::MemoryPointer.from_string(t) }
          tags_ptr = FFI::MemoryPointer.new(:pointer, strs.size)
          tags_ptr.write_array_of_pointer(strs)
        end
        Error.check(Native.hakuban_object_descriptor_new(s.u64, text, tags_ptr, tag_texts.size))
        h = s.u64.read_uint64
      end
      begin
        key_of(h, s, d)
        Error.check(Native.hakuban_object_descriptor_json(s.ptr, h))
        json = -s.ptr.read_pointer.read_string.force_encoding(Encoding::UTF_8)
        Error.check(Native.hakuban_object_descriptor_tag_count(s.len, h))
        tags = Array.new(s.len.read(:size_t)) do |i|
          Error.check(Native.hakuban_object_descriptor_tag_json(s.ptr, h, i))
          TagDescriptor.from_canonical(-s.ptr.read_pointer.read_string.force_encoding(Encoding::UTF_8))
        end
        d.instance_variable_set(:@json, json)
        d.instance_variable_set(:@tags, tags.freeze)
      ensure
        Native.hakuban_object_descriptor_drop(h) if own
      end
      d
    end

    def self.key_of(h, s, d = nil) # :nodoc:
      Error.check(Native.hakuban_object_descriptor_key(s.ptr, h))
      key = -s.ptr.read_pointer.read_string.force_encoding(Encoding::UTF_8)
      d&.instance_variable_set(:@key, key)
      key
    end

    # A frozen descriptor read from library handle h (not dropped here).
    def self.from_handle(h) # :nodoc:
      read_into(allocate, h).freeze
    end

    # The value, parsed from the canonical JSON (frozen).
    def value
      JSON.parse(@json, freeze: true)
    end

    def ==(other)
      other.is_a?(ObjectDescriptor) && other.key == @key
    end
    alias eql? ==

    def hash
      [ObjectDescriptor, @key].hash
    end

    def to_s
      @key
    end

    def inspect
      "#<Hakuban::ObjectDescriptor #{@json}#{@tags.empty? ? "" : " tags=[#{@tags.map(&:json).join(",")}]"}>"
    end

    # Yields a library handle of this descriptor, dropped afterwards.
    def with_handle # :nodoc:
      s = Scratch.get
      strs = @tags.map { |t| FFI::MemoryPointer.from_string(t.json) }
      tags_ptr = nil
      unless strs.empty?
        tags_ptr = FFI::MemoryPointer.new(:pointer, strs.size)
        tags_ptr.write_array_of_pointer(strs)
      end
      Error.check(Native.hakuban_object_descriptor_new(s.u64, @json, tags_ptr, strs.size))
      h = s.u64.read_uint64
      begin
        yield h
      ensure
        Native.hakuban_object_descriptor_drop(h)
      end
    end
  end
end
