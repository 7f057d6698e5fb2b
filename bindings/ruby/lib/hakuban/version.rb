# frozen_string_literal: true

module Hakuban
  # Version of this gem (follows the library's version).
  VERSION = "0.1.0"
  # The ABI this gem was written against: include/hakuban.h's
  # HAKUBAN_ABI_VERSION. A library reporting another hakuban_abi_version()
  # is refused at first load.
  ABI_VERSION = 0
end
