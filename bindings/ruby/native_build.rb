# frozen_string_literal: true

# Builds libhakuban.so from the Go sources of this repository into
# lib/hakuban/native/, where the gem looks for it. Used by the Rakefile
# (`rake native`) and by hakuban.gemspec (so a plain `gem build` in a
# checkout bundles a fresh library). Needs Go; not part of the installed gem.
module HakubanNativeBuild
  RUBY_DIR = __dir__
  ROOT = File.expand_path("../..", RUBY_DIR)
  TARGET = File.join(RUBY_DIR, "lib", "hakuban", "native", "libhakuban.so")

  module_function

  # The files the library is built from.
  def sources
    Dir[File.join(ROOT, "{capi,core}", "**", "*.{go,c,h,map}")].reject { |f| f.end_with?("_test.go") } +
      [File.join(ROOT, "include", "hakuban.h"), File.join(ROOT, "go.mod"), File.join(ROOT, "go.sum")].select { |f| File.exist?(f) }
  end

  def stale?
    return true unless File.exist?(TARGET)

    built = File.mtime(TARGET)
    sources.any? { |f| File.mtime(f) > built }
  end

  # Builds the library if it is missing or older than its sources.
  def build(force: false)
    return TARGET unless force || stale?

    Dir.mkdir(File.dirname(TARGET)) unless Dir.exist?(File.dirname(TARGET))
    go = ENV.fetch("GO", "go")
    map = File.join(ROOT, "capi", "hakuban.map")
    cmd = [go, "build", "-buildmode=c-shared",
           "-ldflags=-extldflags=-Wl,-soname,libhakuban.so.0,--version-script=#{map}",
           "-o", TARGET, "./capi"]
    warn "building #{TARGET}: #{cmd.join(" ")}"
    system(*cmd, chdir: ROOT) or abort "hakuban: building libhakuban.so failed (is Go installed?)"
    # cgo writes its generated (internal) header next to the library.
    generated = TARGET.sub(/\.so\z/, ".h")
    File.delete(generated) if File.exist?(generated)
    TARGET
  end
end
