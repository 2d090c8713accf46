#include "dump/take_dump.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>

#include "core/error.h"
#include "core/host.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "dump/pg_programs.h"
#include "files/file_chunker.h"
#include "pg/sql_connection.h"

namespace walvault::dump {
namespace {

constexpr std::size_t kReadBytes = 1u << 20;
constexpr char kCustomMagic[] = "PGDMP";

// One repository's side of a dump: its chunker (keyed by its own key, with
// the dump chunker's parameters), its chunk store, and the record being
// filled (its chunks, bytes and chunker).
class RepoSink {
 public:
  RepoSink(repo::Repository& repo, repo::ChunkStore& chunks, DumpRecord record)
      : repo_(repo),
        record_(std::move(record)),
        chunker_(dump_cdc_params(), codec::gear_table(repo.derived_key(codec::kGearKeyInfo))),
        chunks_(chunks),
        file_chunker_(chunks_, chunker_) {
    record_.chunker = chunker_.params();
    record_.keyed_chunker = repo.derived_key(codec::kGearKeyInfo).has_value();
    record_.chunks.clear();
    record_.bytes = 0;
    file_chunker_.begin(record_.chunks);
  }

  void add(ByteView data) {
    file_chunker_.add(data);
    record_.bytes += data.size();
  }

  // Stores the rest and flushes every pack and index; returns the record to
  // write.
  DumpRecord finish() {
    file_chunker_.end();
    chunks_.flush();
    record_.added_bytes = file_chunker_.added_bytes();
    return std::move(record_);
  }

 private:
  repo::Repository& repo_;
  DumpRecord record_;
  codec::CdcChunker chunker_;
  repo::ChunkStore& chunks_;
  files::FileChunker file_chunker_;
};

// The dump's bytes into every repository's sink; notes the format from the
// first bytes.
class DumpSinks {
 public:
  DumpSinks(const std::vector<repo::Repository*>& repos, const DumpRecord& base)
      : globals_(is_globals(base)) {
    for (repo::Repository* repo : repos) {
      stores_.push_back(std::make_unique<repo::ChunkStore>(*repo));
      repos_.push_back(repo);
      sinks_.push_back(std::make_unique<RepoSink>(*repo, *stores_.back(), base));
    }
  }

  void add(ByteView data) {
    for (std::size_t i = 0; i < data.size() && head_.size() < sizeof kCustomMagic - 1; ++i)
      head_.push_back(static_cast<char>(data[i]));
    bytes_ += data.size();
    for (auto& sink : sinks_) sink->add(data);
  }

  std::uint64_t bytes() const { return bytes_; }

  std::vector<DumpRecord> finish(std::int64_t end_us) {
    const DumpFormat format = head_ == kCustomMagic ? DumpFormat::kCustom : DumpFormat::kPlain;
    if (globals_ && format == DumpFormat::kCustom)
      throw Error(ErrorCode::kInvalidInput,
                  std::string("the globals (") + kGlobalsDatabase +
                      ") are SQL, pg_dumpall --globals-only's output, not a custom-format archive");
    std::vector<DumpRecord> out;
    for (std::size_t i = 0; i < sinks_.size(); ++i) {
      DumpRecord record = sinks_[i]->finish();
      record.format = format;
      record.end_us = end_us;
      out.push_back(write_dump_record(*repos_[i], std::move(record)));
    }
    return out;
  }

 private:
  std::vector<repo::Repository*> repos_;
  std::vector<std::unique_ptr<repo::ChunkStore>> stores_;
  std::vector<std::unique_ptr<RepoSink>> sinks_;
  bool globals_;
  std::string head_;
  std::uint64_t bytes_ = 0;
};

// Reads `fd` to its end into `sink`; a read error throws Error(kIo) naming `what`.
void read_all(int fd, const std::string& what, const std::function<void(ByteView)>& sink) {
  Bytes buffer(kReadBytes);
  for (;;) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw_errno("reading " + what, errno);
    if (got == 0) return;
    sink(ByteView(buffer.data(), static_cast<std::size_t>(got)));
  }
}

// `sink` gets what `fd` holds, gunzipped when it starts with gzip's magic
// (concatenated members too).
void read_maybe_gzip(int fd, const std::string& what, const std::function<void(ByteView)>& sink) {
  bool first = true, gzip = false, stream_ended = false;
  z_stream z{};
  Bytes out(4 * kReadBytes);
  auto inflate_into = [&](ByteView in) {
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    // Until the input is used up and the output buffer was not filled (a
    // full buffer may leave output pending).
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        throw Error(ErrorCode::kInvalidInput, what + ": not a valid gzip stream");
      sink(ByteView(out.data(), out.size() - z.avail_out));
      if (rc == Z_STREAM_END) {
        stream_ended = true;
        if (z.avail_in == 0) break;
        inflateReset(&z);  // concatenated gzip members
      } else {
        stream_ended = false;
        if (rc == Z_BUF_ERROR) break;  // no progress possible: needs more input
      }
    } while (z.avail_in > 0 || z.avail_out == 0);
  };
  try {
    read_all(fd, what, [&](ByteView data) {
      if (first && data.size() >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        gzip = true;
        if (inflateInit2(&z, 15 + 32) != Z_OK)
          throw Error(ErrorCode::kInternal, "zlib: inflateInit2 failed");
      }
      first = false;
      gzip ? inflate_into(data) : sink(data);
    });
  } catch (...) {
    if (gzip) inflateEnd(&z);
    throw;
  }
  if (!gzip) return;
  inflateEnd(&z);
  if (!stream_ended) throw Error(ErrorCode::kInvalidInput, what + ": the gzip stream is truncated");
}

DumpRecord base_record(const std::string& database, const std::string& tag, std::int64_t start_us,
                       const std::string& source) {
  if (auto p = database_name_problem(database))
    throw Error(ErrorCode::kUsage,
                "database " + printable_name(database) + ": cannot name dumps: it " + *p);
  DumpRecord r;
  r.database = database;
  r.tag = tag;
  r.start_us = start_us;
  r.host = host_name();
  r.source = source;
  return r;
}

// The server's facts over a connection closed before the program starts.
ServerFacts ask_server(const std::string& conninfo) {
  pg::SqlConnection connection(conninfo, "walvault dump");
  return server_facts(connection);
}

// One run of `argv` (pg_dump or pg_dumpall, handed the connection by its
// environment) whose stdout is the dump `base` describes, into every
// repository of `repos`. `what` names the run in errors.
std::vector<DumpRecord> take_from_program(const std::vector<repo::Repository*>& repos,
                                          const DumpRecord& base, std::vector<std::string> argv,
                                          const std::string& conninfo, const std::string& what) {
  DumpSinks sinks(repos, base);
  StreamingProgram program(client_run(std::move(argv), conninfo), StreamingProgram::Pipe::kStdout);
  read_all(program.fd(), what + "'s output", [&](ByteView data) { sinks.add(data); });
  const ProgramResult result = program.wait();
  if (result.status != 0)
    throw Error(ErrorCode::kPostgres, what + " failed (exit " + std::to_string(result.status) +
                                          "): " + failure_line(result.output));
  if (sinks.bytes() == 0) throw Error(ErrorCode::kPostgres, what + " wrote nothing");
  return sinks.finish(now_unix_us());
}

}  // namespace

std::optional<std::string> dumpable_problem(const std::string& database) {
  if (database == kGlobalsDatabase)
    return std::string(
        "is walvault's name for the cluster's roles and tablespaces (dump --globals)");
  if (auto p = database_name_problem(database)) return "cannot name dumps: it " + *p;
  return std::nullopt;
}

std::vector<DumpRecord> take_dump(const std::vector<repo::Repository*>& repos,
                                  const TakeDumpOptions& options) {
  if (auto p = dumpable_problem(options.database))
    throw Error(ErrorCode::kUsage, "database " + printable_name(options.database) + " " + *p);
  DumpRecord base = base_record(options.database, options.tag,
                                options.start_us ? options.start_us : now_unix_us(), "pg_dump");
  base.server_version = ask_server(options.conninfo).version_num;
  const std::string pg_dump = client_program(base.server_version, options.pg_bin, "pg_dump");
  return take_from_program(repos, base,
                           {pg_dump, "--format=custom", "--compress=0", "--no-password",
                            dbname_argument(options.database)},
                           options.conninfo, "pg_dump of database " + options.database);
}

std::vector<DumpRecord> take_globals(const std::vector<repo::Repository*>& repos,
                                     const TakeDumpOptions& options) {
  DumpRecord base = base_record(kGlobalsDatabase, options.tag,
                                options.start_us ? options.start_us : now_unix_us(), "pg_dumpall");
  const ServerFacts server = ask_server(options.conninfo);
  base.server_version = server.version_num;
  const std::string pg_dumpall = client_program(server.version_num, options.pg_bin, "pg_dumpall");
  return take_from_program(
      repos, base, {pg_dumpall, "--globals-only", "--no-password", "--database=" + server.database},
      options.conninfo, "pg_dumpall --globals-only");
}

std::vector<std::string> databases_to_dump(const std::string& conninfo) {
  pg::SqlConnection connection(conninfo, "walvault dump");
  return connection.column(
      "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname");
}

DumpRecord recut_dump(repo::ChunkStore& from, const DumpRecord& record, repo::Repository& to,
                      repo::ChunkStore& to_chunks) {
  const std::string who =
      "dump " + dump_id(record) + " (" + record.database + "/" + record.label + ")";
  RepoSink sink(to, to_chunks, record);
  Bytes scratch;
  for (std::size_t i = 0; i < record.chunks.size(); ++i) {
    const std::optional<ByteView> data = from.read_view(record.chunks[i].id, scratch);
    if (!data || data->size() != record.chunks[i].length)
      throw Error(ErrorCode::kCorruption, who + ": chunk " + std::to_string(i) + " (" +
                                              to_hex(record.chunks[i].id) +
                                              (data ? ") has another length" : ") is missing"));
    sink.add(*data);
  }
  return sink.finish();
}

DumpRecord import_dump(repo::Repository& repo, const std::string& database, std::int64_t time_us,
                       const std::string& tag, int fd, const std::string& what) {
  DumpRecord base = base_record(database, tag, time_us, "import");
  base.file = what;
  DumpSinks sinks({&repo}, base);
  read_maybe_gzip(fd, what, [&](ByteView data) { sinks.add(data); });
  if (sinks.bytes() == 0) throw Error(ErrorCode::kInvalidInput, what + ": empty");
  return sinks.finish(time_us).at(0);
}

}  // namespace walvault::dump
