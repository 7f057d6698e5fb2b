# frozen_string_literal: true

require_relative "helper"
require "tmpdir"
require "open3"

# `gem build` + `gem install --local` offline, then use the installed gem
# (with the library bundled inside it) from another directory.
class TestGem < Minitest::Test
  RUBY_DIR = File.expand_path("..", __dir__)
  BUNDLED = File.join(RUBY_DIR, "lib", "hakuban", "native", "libhakuban.so")

  def test_gem_builds_and_installs_offline
    skip "no bundled library (run `rake native`)" unless File.exist?(BUNDLED)

    Dir.mktmpdir do |dir|
      gem_file = File.join(dir, "hakuban.gem")
      out, status = Open3.capture2e("gem", "build", "hakuban.gemspec", "--output", gem_file, chdir: RUBY_DIR)
      assert status.success?, out

      home = File.join(dir, "home")
      # Dependencies (ffi) come from the system's gems; nothing is fetched.
      env = {
        "GEM_HOME" => home,
        "GEM_PATH" => [home, *Gem.path].join(File::PATH_SEPARATOR),
        "HAKUBAN_LIBRARY" => nil,
        "RUBYOPT" => nil, "RUBYLIB" => nil, "BUNDLE_GEMFILE" => nil,
        "http_proxy" => "http://127.0.0.1:9", "https_proxy" => "http://127.0.0.1:9"
      }
      out, status = Open3.capture2e(env, "gem", "install", "--local", "--no-document", gem_file, chdir: dir)
      assert status.success?, out

      script = <<~RUBY
        require "hakuban"
        puts Hakuban::Native.library_path
        Hakuban::Exchange.open do |ex|
          ex.expose_object("gem") do |e|
            ex.observe_object("gem") do |o|
              e.next(timeout: 5).send_json("installed")
              puts o.next(timeout: 5).json
            end
          end
        end
      RUBY
      out, status = Open3.capture2e(env, RbConfig.ruby, "-e", script, chdir: dir)
      assert status.success?, out
      path, value = out.lines.map(&:chomp)
      assert path.start_with?(home), "the library was not loaded from the installed gem: #{path}"
      assert_equal "installed", value
    end
  end
end
