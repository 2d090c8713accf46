// Hand-made tar streams for tests that must say exactly what a header holds:
// names GNU tar would refuse to write ("../x", "/abs"), devices, hard links,
// GNU long names ('L'/'K') and pax 'x' records. Header-only; used by the
// tar reader's unit tests and by the hostile-tar integration test.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

namespace walvault::testing {

class TarBuilder {
 public:
  // A regular file (type '0') with `content`.
  TarBuilder& file(const std::string& name, const std::string& content, unsigned mode = 0600) {
    return entry(name, '0', content, "", mode);
  }
  TarBuilder& dir(const std::string& name, unsigned mode = 0700) {
    return entry(name, '5', "", "", mode);
  }
  TarBuilder& symlink(const std::string& name, const std::string& target) {
    return entry(name, '2', "", target, 0777);
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target) {
    return entry(name, '1', "", target, 0600);
  }
  // Any other type flag ('3' character device, '4' block device, '6' FIFO).
  TarBuilder& special(const std::string& name, char type) {
    return entry(name, type, "", "", 0600);
  }
  // A file whose name goes in a GNU 'L' long-name header before it.
  TarBuilder& gnu_long_file(const std::string& name, const std::string& content) {
    block(header("././@LongLink", 'L', name.size() + 1, "", 0644, "ustar  "));
    data(name + std::string(1, '\0'));
    return entry(name.substr(0, 99), '0', content, "", 0600, "ustar  ");
  }
  // A file whose name goes in a pax 'x' header's path record.
  TarBuilder& pax_file(const std::string& name, const std::string& content) {
    const std::string record = pax_record("path", name);
    block(header("PaxHeaders/x", 'x', record.size(), "", 0644));
    data(record);
    return entry("placeholder", '0', content, "", 0600);
  }
  // The stream with its end-of-archive marker.
  std::string finish() const { return out_ + std::string(1024, '\0'); }

  // The pieces, for tests that mutate single fields (the tar reader's fuzz test).
  static void put_octal(std::string& h, std::size_t offset, std::size_t width,
                        std::uint64_t value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(width - 1),
                  static_cast<unsigned long long>(value));
    h.replace(offset, width - 1, buf);
  }
  // One header block; `name` cut to the 100-byte field, `magic` "ustar"
  // (POSIX, version "00") or "ustar  " (old GNU).
  static std::string header(const std::string& name, char type, std::uint64_t size,
                            const std::string& link = "", unsigned mode = 0600,
                            const char* magic = "ustar") {
    std::string h(512, '\0');
    h.replace(0, std::min<std::size_t>(name.size(), 100), name.substr(0, 100));
    put_octal(h, 100, 8, mode);
    put_octal(h, 108, 8, 26);
    put_octal(h, 116, 8, 26);
    put_octal(h, 124, 12, size);
    put_octal(h, 136, 12, 1700000000);
    h[156] = type;
    h.replace(157, std::min<std::size_t>(link.size(), 100), link.substr(0, 100));
    if (std::string(magic) == "ustar") {
      h.replace(257, 8,
                std::string("ustar\0"
                            "00",
                            8));
    } else {
      h.replace(257, 8, std::string("ustar  \0", 8));
    }
    set_checksum(h, 0);
    return h;
  }
  // Recomputes the checksum of the header block at `at`.
  static void set_checksum(std::string& h, std::size_t at) {
    h.replace(at + 148, 8, "        ");
    unsigned sum = 0;
    for (std::size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(h[at + i]);
    put_octal(h, at + 148, 7, sum);
  }
  // One pax record, "<len> key=value\n", where <len> counts itself.
  static std::string pax_record(const std::string& key, const std::string& value) {
    const std::string body = " " + key + "=" + value + "\n";
    std::size_t length = body.size() + 1;
    while (std::to_string(length).size() + body.size() != length) ++length;
    return std::to_string(length) + body;
  }

 private:
  TarBuilder& entry(const std::string& name, char type, const std::string& content,
                    const std::string& link, unsigned mode, const char* magic = "ustar") {
    block(header(name, type, content.size(), link, mode, magic));
    data(content);
    return *this;
  }
  void block(const std::string& h) { out_ += h; }
  void data(const std::string& bytes) {
    out_ += bytes;
    out_ += std::string((512 - bytes.size() % 512) % 512, '\0');
  }
  std::string out_;
};

}  // namespace walvault::testing
