# frozen_string_literal: true

# hakuban: share data objects between processes. One process exposes an
# object (a shared variable named by JSON), any number observe its newest
# state. See README.md.
#
#   require "hakuban"
#
#   Hakuban::Exchange.open do |exchange|
#     exchange.expose_object({"sensor" => 7}) do |expose|
#       exchange.observe_object({"sensor" => 7}) do |observe|
#         expose.next << "21.5"          # assigned: somebody observes
#         p observe.next.data            # => "21.5"
#       end
#     end
#   end
#
# Requiring this file does not load libhakuban.so: the library is loaded on
# first use (see Hakuban::Native), so a process may fork before that.
module Hakuban
end

require_relative "hakuban/version"
require_relative "hakuban/error"
require_relative "hakuban/native"
require_relative "hakuban/handle"
require_relative "hakuban/descriptor"
require_relative "hakuban/object_state"
require_relative "hakuban/stream"
require_relative "hakuban/contracts"
require_relative "hakuban/sink"
require_relative "hakuban/exchange"
require_relative "hakuban/network"

module Hakuban
  LOG_LEVELS = %i[debug info warn error off].freeze

  class << self
    # The loaded library's version, e.g. "0.1.0" (loads the library).
    def library_version
      Native.hakuban_version
    end

    # The loaded library's ABI version (loads the library; a library of
    # another ABI than ABI_VERSION is refused with LibraryError).
    def library_abi_version
      Native.hakuban_abi_version
    end

    # Sets the process-wide log level of the library (:debug, :info, :warn,
    # :error, :off; default :warn). Records go to standard error.
    def log_level=(level)
      idx = LOG_LEVELS.index(level.to_sym) or
        raise ArgumentError, "log level must be one of #{LOG_LEVELS.inspect}, not #{level.inspect}"
      Error.check(Native.hakuban_log_set_level(idx))
    end

    # How often the helpers below look at their worker threads, in seconds.
    HELPER_POLL = 0.1 # :nodoc:

    # ObjectObserveContract#for_each_till_next.
    def till_next(contract, &block) # :nodoc:
      worker = nil
      loop do
        item = ended_if_closed(contract) { contract.next(timeout: HELPER_POLL) } # StopIteration ends the loop
        if worker && !worker.alive?
          finished = worker
          worker = nil
          finished.join # raises the block's exception, if any
        end
        next if item.nil?

        abandon(worker)
        worker = Thread.new(item) do |it|
          Thread.current.report_on_exception = false
          block.call(it)
        end
      end
      nil
    ensure
      abandon(worker)
    end

    # ObjectExposeContract#for_each_till_revoked and TagExposeContract's.
    def till_revoked(contract, &block) # :nodoc:
      workers = {}
      loop do
        ended_if_closed(contract) { IO.select([contract.to_io, *workers.keys.map(&:to_io)], nil, nil, HELPER_POLL) }
        workers.each_key.to_a.each do |sink|
          worker = workers[sink]
          next unless sink.revoked? || !worker.alive?

          workers.delete(sink)
          abandon(worker)
          sink.close
        end
        while (sink = ended_if_closed(contract) { contract.try_next }) # StopIteration ends the loop
          workers[sink] = Thread.new(sink) do |sk|
            Thread.current.report_on_exception = false
            block.call(sk)
          end
        end
      end
      nil
    ensure
      workers.each do |sink, worker|
        abandon(worker)
      ensure
        sink.close
      end
    end

    # The longest timeout that is not "no limit", in seconds: the largest
    # int64_t of milliseconds (some 292 million years). Anything longer
    # could not be added to the clock and turned into milliseconds anyway.
    TIMEOUT_MAX = (2**63 - 1) / 1000 # :nodoc:

    # The timeout: argument of a waiting call (Stream#next,
    # ObjectStateSink#wait_revoked, Connector#wait), in seconds, checked
    # and normalized in one place. Returns nil for no limit (nil,
    # Float::INFINITY or anything above TIMEOUT_MAX), 0 for "do not wait" (0
    # or a negative timeout: a deadline already passed, so the call only
    # looks at what is there now), else timeout itself. Raises
    # InvalidArgumentError naming the parameter for NaN, ArgumentError for
    # something that is not a real number.
    def timeout_seconds(timeout, name = :timeout) # :nodoc:
      return nil if timeout.nil?
      unless timeout.is_a?(Numeric) && timeout.real?
        raise ArgumentError, "#{name} must be a number of seconds or nil, not #{timeout.inspect}"
      end
      if timeout.respond_to?(:nan?) && timeout.nan?
        raise Error.invalid_argument("#{name} must be a number of seconds or nil, not NaN")
      end
      return 0 unless timeout.positive?

      timeout > TIMEOUT_MAX ? nil : timeout
    end

    private

    # Runs the block; if contract was closed (by another thread) before or
    # during it, raises StopIteration instead of what the block raised: for
    # the helpers, closing the contract is how it ends. A close while the
    # block is in IO.select can also surface as EBADF: the library closes
    # the fd right after the IO, and select may already hold the number.
    def ended_if_closed(contract)
      raise StopIteration if contract.closed?

      yield
    rescue ClosedError, IOError, Errno::EBADF
      raise StopIteration if contract.closed?

      raise
    end

    # Kills worker (its ensure clauses run) and waits for it; raises the
    # exception it died of, if it died of one before being killed.
    def abandon(worker)
      return unless worker

      worker.kill
      worker.join
    end
  end
end
