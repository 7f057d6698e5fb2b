# frozen_string_literal: true

module Hakuban
  # Every error hakuban raises is a Hakuban::Error. Errors returned by the C
  # library have one subclass per result code (see RESULT_CODES), with #code
  # set to that code.
  class Error < StandardError
    # The C result code (a negative Integer), or nil for errors that do not
    # come from the library (LibraryError, ForkError).
    attr_reader :code

    def initialize(message = nil, code: nil)
      super(message)
      @code = code
    end

    # Turns a C result into an exception: returns rc when it is not an error
    # (0 or one of the positive stream states), raises the subclass of its
    # code with the thread's last error message otherwise. The message is
    # read on the same thread right after the failing call, as the C API
    # requires (Ruby threads are native threads).
    def self.check(rc)
      return rc if rc >= 0

      raise for_code(rc, Native.hakuban_last_error_message)
    end

    # The exception for result code rc with message.
    def self.for_code(rc, message)
      klass = ERRORS_BY_CODE.fetch(rc, Error)
      klass.new(message.nil? || message.empty? ? "hakuban error #{rc}" : message, code: rc)
    end

    # An InvalidArgumentError with message, for an argument the Ruby side
    # refuses before it reaches the library (a NaN timeout, an option that
    # does not fit its C type).
    def self.invalid_argument(message) # :nodoc:
      for_code(RESULT_CODES.fetch(:HAKUBAN_ERR_INVALID_ARGUMENT), message)
    end
  end

  # libhakuban could not be loaded: not found, not loadable, or of another
  # ABI version than this gem.
  class LibraryError < Error; end

  # The library was used in a child process forked after the parent had
  # loaded it. The Go runtime inside does not survive fork(); the child
  # would hang. Load hakuban only after forking (or exec in the child).
  class ForkError < Error
    def self.forked
      new("hakuban cannot be used in a process forked after the library was loaded " \
          "(the Go runtime does not survive fork()); fork before first using hakuban, " \
          "or exec in the child")
    end
  end

  # Result codes of the C library, by the name include/hakuban.h gives them.
  # This is the one table the Ruby side has: Error.check, the stream code
  # and the test comparing it with the header's enum hakuban_result read it.
  RESULT_CODES = {
    HAKUBAN_OK: 0,
    HAKUBAN_EMPTY: 1,
    HAKUBAN_END: 2,
    HAKUBAN_TIMEOUT: 3,
    HAKUBAN_ERR_INVALID_ARGUMENT: -1,
    HAKUBAN_ERR_INVALID_HANDLE: -2,
    HAKUBAN_ERR_INVALID_DESCRIPTOR: -3,
    HAKUBAN_ERR_DESCRIPTOR_TOO_LARGE: -4,
    HAKUBAN_ERR_TOO_MANY_TAGS: -5,
    HAKUBAN_ERR_INVALID_CAPACITY: -6,
    HAKUBAN_ERR_STALE_VERSION: -7,
    HAKUBAN_ERR_REVOKED: -8,
    HAKUBAN_ERR_CLOSED: -9,
    HAKUBAN_ERR_WRONG_FORMAT: -10,
    HAKUBAN_ERR_BUFFER_TOO_SMALL: -11,
    HAKUBAN_ERR_INVALID_CONFIG: -12,
    HAKUBAN_ERR_REFUSED: -13,
    HAKUBAN_ERR_PROTOCOL: -14,
    HAKUBAN_ERR_CONNECTION: -15,
    HAKUBAN_ERR_INTERNAL: -16
  }.freeze

  OK = RESULT_CODES.fetch(:HAKUBAN_OK)
  EMPTY = RESULT_CODES.fetch(:HAKUBAN_EMPTY)
  END_ = RESULT_CODES.fetch(:HAKUBAN_END)
  TIMEOUT = RESULT_CODES.fetch(:HAKUBAN_TIMEOUT)
  private_constant :OK, :EMPTY, :END_, :TIMEOUT

  # One subclass of Error per error code, named after it:
  # HAKUBAN_ERR_STALE_VERSION -> Hakuban::StaleVersionError, and so on.
  ERRORS_BY_CODE = RESULT_CODES.each_with_object({}) do |(name, code), by_code|
    next unless code.negative?

    class_name = name.to_s.delete_prefix("HAKUBAN_ERR_").split("_").map(&:capitalize).join + "Error"
    klass = Class.new(Error)
    const_set(class_name, klass)
    by_code[code] = klass
  end.freeze

  # A use of a closed Ruby object (exchange, contract, sink) raises
  # ClosedError too: it is the same situation the library reports as
  # HAKUBAN_ERR_CLOSED.
end
