#include "pg/base_backup.h"

#include <charconv>
#include <cstring>
#include <regex>

#include "core/error.h"
#include "pg/libpq_api.h"

// Implementation notes. libpq delivers the whole BASE_BACKUP exchange as a
// sequence of PQgetResult results: TUPLES_OK (start position), TUPLES_OK
// (tablespace list), then COPY_OUT results (one on 15+, one per tablespace
// plus one for the manifest on 13/14), then TUPLES_OK (end position) and a
// final COMMAND_OK. One loop handles both shapes; only the meaning of each
// COPY_OUT differs. CopyData messages are taken with PQgetCopyData in
// blocking mode, one libpq allocation each (the server sends 32 KiB pieces).

namespace walvault::pg {
namespace {

constexpr int kFirstCopyStreamVersion = 150000;  // single COPY stream, option list
constexpr int kOldestSupportedVersion = 130000;  // backup manifests appeared in 13
constexpr std::uint64_t kLegacyProgressStep = 8 << 20;

struct ResultDeleter {
  void operator()(PGresult* res) const { libpq_api().clear(res); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string first_line(std::string text) {
  auto nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  return text;
}

[[noreturn]] void server_error(const std::string& what, PGconn* conn, const PGresult* res) {
  const char* primary =
      res ? libpq_api().result_error_field(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string message = primary ? primary : first_line(libpq_api().error_message(conn));
  if (message.empty()) message = "unexpected response";
  throw Error(ErrorCode::kPostgres, what + ": " + message);
}

Result exec_tuples(PGconn* conn, const std::string& command) {
  Result res(libpq_api().exec(conn, command.c_str()));
  if (libpq_api().result_status(res.get()) != PGRES_TUPLES_OK || libpq_api().ntuples(res.get()) < 1)
    server_error(command, conn, res.get());
  return res;
}

std::string value_at(const PGresult* res, int row, int column) {
  return libpq_api().get_is_null(res, row, column)
             ? std::string()
             : std::string(libpq_api().get_value(res, row, column));
}

template <typename T>
T parse_number(const std::string& text, const std::string& what) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw Error(ErrorCode::kPostgres, "unexpected " + what + " from the server: '" + text + "'");
  return value;
}

// One row of (LSN text, timeline) as sent before and after the archives.
std::pair<Lsn, TimeLineId> parse_position(const PGresult* res, const std::string& what) {
  if (libpq_api().ntuples(res) != 1 || libpq_api().nfields(res) < 2)
    throw Error(ErrorCode::kPostgres, "unexpected " + what + " result shape from the server");
  std::string lsn_text = value_at(res, 0, 0);
  auto lsn = parse_lsn(lsn_text);
  if (!lsn) throw Error(ErrorCode::kPostgres, "unexpected " + what + " '" + lsn_text + "'");
  return {*lsn, parse_number<TimeLineId>(value_at(res, 0, 1), what + " timeline")};
}

std::vector<Tablespace> parse_tablespaces(const PGresult* res) {
  if (libpq_api().nfields(res) < 3)
    throw Error(ErrorCode::kPostgres, "unexpected tablespace list shape from the server");
  std::vector<Tablespace> out;
  for (int row = 0; row < libpq_api().ntuples(res); ++row) {
    Tablespace ts;
    if (!libpq_api().get_is_null(res, row, 0))
      ts.oid = parse_number<std::uint32_t>(value_at(res, row, 0), "tablespace oid");
    ts.path = value_at(res, row, 1);
    if (!libpq_api().get_is_null(res, row, 2))
      ts.size_kb = parse_number<std::int64_t>(value_at(res, row, 2), "tablespace size");
    out.push_back(std::move(ts));
  }
  return out;
}

// SHOW wal_segment_size answers with units ("16MB", "1GB").
std::uint32_t parse_size_with_unit(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto number = parse_number<std::uint64_t>(text.substr(0, digits), "wal_segment_size");
  std::string unit = text.substr(digits);
  std::uint64_t scale = unit == "" || unit == "B" ? 1
                        : unit == "kB"            ? 1ULL << 10
                        : unit == "MB"            ? 1ULL << 20
                        : unit == "GB"            ? 1ULL << 30
                                                  : 0;
  if (scale == 0 || number * scale > UINT32_MAX)
    throw Error(ErrorCode::kPostgres, "unexpected wal_segment_size '" + text + "'");
  return static_cast<std::uint32_t>(number * scale);
}

std::string quote_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

const char* checksum_name(ManifestChecksums checksums) {
  switch (checksums) {
    case ManifestChecksums::kCrc32c:
      return "CRC32C";
    case ManifestChecksums::kSha256:
      return "SHA256";
    case ManifestChecksums::kNone:
      return "NONE";
  }
  return "CRC32C";
}

std::uint64_t load_be64(const std::uint8_t* p) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = value << 8 | p[i];
  return value;
}

// Forwards the tar reader's entries to the backup sink.
class EntryForwarder : public TarEntrySink {
 public:
  explicit EntryForwarder(BackupSink& sink) : sink_(sink) {}
  void on_entry_begin(const TarEntry& entry) override { sink_.on_tar_entry_begin(entry); }
  void on_entry_data(ByteView data) override { sink_.on_tar_entry_data(data); }
  void on_entry_end() override { sink_.on_tar_entry_end(); }

 private:
  BackupSink& sink_;
};

// Drives one BASE_BACKUP exchange after the command was sent.
class BackupSession {
 public:
  BackupSession(PGconn* conn, int version, const BaseBackupOptions& options, BackupSink& sink)
      : conn_(conn), version_(version), options_(options), sink_(sink), forwarder_(sink) {}

  BaseBackupResult run() {
    Result start = next_result("BASE_BACKUP");
    if (libpq_api().result_status(start.get()) != PGRES_TUPLES_OK)
      server_error("BASE_BACKUP", conn_, start.get());
    std::tie(result_.start_lsn, result_.start_timeline) =
        parse_position(start.get(), "backup start position");
    Result list = next_result("BASE_BACKUP tablespace list");
    if (libpq_api().result_status(list.get()) != PGRES_TUPLES_OK)
      server_error("BASE_BACKUP tablespace list", conn_, list.get());
    tablespaces_ = parse_tablespaces(list.get());
    sink_.on_start(result_.start_lsn, result_.start_timeline, tablespaces_);

    std::size_t copies = 0;
    bool have_end = false;
    while (Result res{libpq_api().get_result(conn_)}) {
      switch (libpq_api().result_status(res.get())) {
        case PGRES_COPY_OUT:
          if (have_end)
            throw Error(ErrorCode::kPostgres, "BASE_BACKUP: COPY after the end position");
          if (version_ >= kFirstCopyStreamVersion) {
            receive_copy_stream();
          } else if (copies < tablespaces_.size()) {
            receive_legacy_tar(tablespaces_[copies]);
          } else {
            receive_legacy_manifest();
          }
          ++copies;
          break;
        case PGRES_TUPLES_OK:
          std::tie(result_.end_lsn, result_.end_timeline) =
              parse_position(res.get(), "backup end position");
          have_end = true;
          break;
        case PGRES_COMMAND_OK:
          break;
        default:
          server_error("BASE_BACKUP", conn_, res.get());
      }
    }
    if (!have_end)
      throw Error(ErrorCode::kPostgres, "BASE_BACKUP: no end position from the server");
    sink_.on_end(result_.end_lsn, result_.end_timeline);
    return result_;
  }

 private:
  Result next_result(const std::string& what) {
    Result res(libpq_api().get_result(conn_));
    if (!res) server_error(what, conn_, nullptr);
    return res;
  }

  // Calls `on_message` with each CopyData message until the server ends the COPY.
  template <typename F>
  void for_each_copy_message(F&& on_message) {
    for (;;) {
      char* buffer = nullptr;
      int length = libpq_api().get_copy_data(conn_, &buffer, 0);
      if (length == -1) return;
      if (length < 0) server_error("BASE_BACKUP stream", conn_, nullptr);
      std::unique_ptr<char, decltype(LibpqApi::freemem)> owned(buffer, libpq_api().freemem);
      on_message(ByteView(reinterpret_cast<const std::uint8_t*>(buffer),
                          static_cast<std::size_t>(length)));
    }
  }

  void begin_archive(const std::string& name, const Tablespace& tablespace) {
    sink_.on_archive_begin(name, tablespace);
    reader_ = std::make_unique<TarReader>(forwarder_);
  }

  void end_archive() {
    if (!reader_) return;
    reader_->finish();
    reader_.reset();
    sink_.on_archive_end();
  }

  void archive_data(ByteView data) {
    reader_->feed(data);
    result_.tar_bytes += data.size();
  }

  void receive_copy_stream() {
    bool in_manifest = false;
    for_each_copy_message([&](ByteView message) {
      if (message.empty())
        throw Error(ErrorCode::kInvalidInput, "BASE_BACKUP: empty CopyData message");
      ByteView body = message.subspan(1);
      switch (message[0]) {
        case 'n': {
          end_archive();
          std::string_view text = as_chars(body);
          std::string name(text.substr(0, text.find('\0')));
          std::string path =
              name.size() < text.size() ? std::string(text.substr(name.size() + 1)) : "";
          path.resize(strnlen(path.c_str(), path.size()));
          begin_archive(name, tablespace_for_path(path));
          break;
        }
        case 'd':
          if (in_manifest) {
            sink_.on_manifest_data(body);
            result_.manifest_bytes += body.size();
          } else if (reader_) {
            archive_data(body);
          } else {
            throw Error(ErrorCode::kInvalidInput, "BASE_BACKUP: archive data before any archive");
          }
          break;
        case 'p':
          if (body.size() != 8)
            throw Error(ErrorCode::kInvalidInput, "BASE_BACKUP: bad progress message");
          sink_.on_progress(load_be64(body.data()));
          break;
        case 'm':
          end_archive();
          in_manifest = true;
          break;
        default:
          throw Error(ErrorCode::kInvalidInput, "BASE_BACKUP: unknown CopyData type " +
                                                    std::to_string(static_cast<int>(message[0])));
      }
    });
    end_archive();
  }

  const Tablespace& tablespace_for_path(const std::string& path) {
    for (const auto& ts : tablespaces_)
      if (ts.path == path) return ts;
    throw Error(ErrorCode::kInvalidInput,
                "BASE_BACKUP: archive for tablespace '" + path + "' not in the tablespace list");
  }

  void receive_legacy_tar(const Tablespace& tablespace) {
    begin_archive(tablespace.is_main() ? "base.tar" : std::to_string(*tablespace.oid) + ".tar",
                  tablespace);
    std::uint64_t next_report = result_.tar_bytes + kLegacyProgressStep;
    for_each_copy_message([&](ByteView data) {
      archive_data(data);
      if (options_.progress && result_.tar_bytes >= next_report) {
        sink_.on_progress(result_.tar_bytes);
        next_report = result_.tar_bytes + kLegacyProgressStep;
      }
    });
    end_archive();
    if (options_.progress) sink_.on_progress(result_.tar_bytes);
  }

  void receive_legacy_manifest() {
    for_each_copy_message([&](ByteView data) {
      sink_.on_manifest_data(data);
      result_.manifest_bytes += data.size();
    });
  }

  PGconn* conn_;
  int version_;
  const BaseBackupOptions& options_;
  BackupSink& sink_;
  EntryForwarder forwarder_;
  std::unique_ptr<TarReader> reader_;
  std::vector<Tablespace> tablespaces_;
  BaseBackupResult result_;
};

}  // namespace

void BaseBackupClient::Deleter::operator()(pg_conn* conn) const { libpq_api().finish(conn); }

BaseBackupClient::BaseBackupClient(const std::string& conninfo) {
  // expand_dbname: `conninfo` may be a full connection string; the entries
  // after it override what it says, so the session is always physical
  // replication.
  const char* keys[] = {"dbname", "replication", "fallback_application_name", nullptr};
  const char* values[] = {conninfo.c_str(), "true", "walvault", nullptr};
  conn_.reset(libpq_api().connectdb_params(keys, values, 1));
  if (!conn_) throw Error(ErrorCode::kPostgres, "connect: out of memory");
  if (libpq_api().status(conn_.get()) != CONNECTION_OK) {
    // PQerrorMessage is "connection to server ... failed: FATAL:  ..."; it
    // never echoes the password, and the conninfo we add is redacted.
    throw Error(ErrorCode::kPostgres,
                "connect to PostgreSQL (" + redact_conninfo(conninfo) +
                    "): " + first_line(libpq_api().error_message(conn_.get())));
  }
  if (server_version_num() < kOldestSupportedVersion) {
    throw Error(ErrorCode::kPostgres, "PostgreSQL server version " +
                                          std::to_string(server_version_num()) +
                                          " is not supported (13 or newer)");
  }
}

BaseBackupClient::~BaseBackupClient() = default;

int BaseBackupClient::server_version_num() const { return libpq_api().server_version(conn_.get()); }

ServerFacts BaseBackupClient::server_facts() {
  ServerFacts facts;
  facts.server_version_num = server_version_num();
  Result id = exec_tuples(conn_.get(), "IDENTIFY_SYSTEM");
  if (libpq_api().nfields(id.get()) < 3)
    throw Error(ErrorCode::kPostgres, "unexpected IDENTIFY_SYSTEM result shape");
  facts.system_identifier =
      parse_number<std::uint64_t>(value_at(id.get(), 0, 0), "system identifier");
  facts.timeline = parse_number<TimeLineId>(value_at(id.get(), 0, 1), "timeline");
  auto lsn = parse_lsn(value_at(id.get(), 0, 2));
  if (!lsn) throw Error(ErrorCode::kPostgres, "unexpected IDENTIFY_SYSTEM xlogpos");
  facts.current_lsn = *lsn;
  facts.wal_segment_size =
      parse_size_with_unit(value_at(exec_tuples(conn_.get(), "SHOW wal_segment_size").get(), 0, 0));
  facts.data_checksums =
      value_at(exec_tuples(conn_.get(), "SHOW data_checksums").get(), 0, 0) == "on";
  return facts;
}

BaseBackupResult BaseBackupClient::run_base_backup(const BaseBackupOptions& options,
                                                   BackupSink& sink) {
  int version = server_version_num();
  if (!libpq_api().send_query(conn_.get(), base_backup_command(options, version).c_str()))
    server_error("BASE_BACKUP", conn_.get(), nullptr);
  return BackupSession(conn_.get(), version, options, sink).run();
}

std::string base_backup_command(const BaseBackupOptions& options, int server_version_num) {
  bool fast = options.checkpoint == CheckpointMode::kFast;
  std::string checksums = quote_literal(checksum_name(options.manifest_checksums));
  if (server_version_num >= kFirstCopyStreamVersion) {
    std::string cmd = "BASE_BACKUP (LABEL " + quote_literal(options.label);
    if (options.progress) cmd += ", PROGRESS";
    cmd += std::string(", CHECKPOINT ") + (fast ? "'fast'" : "'spread'");
    cmd += ", WAIT false";
    if (options.manifest) cmd += ", MANIFEST 'yes', MANIFEST_CHECKSUMS " + checksums;
    return cmd + ", TABLESPACE_MAP)";
  }
  std::string cmd = "BASE_BACKUP LABEL " + quote_literal(options.label);
  if (options.progress) cmd += " PROGRESS";
  if (fast) cmd += " FAST";
  cmd += " NOWAIT";
  if (options.manifest) cmd += " MANIFEST 'yes' MANIFEST_CHECKSUMS " + checksums;
  return cmd + " TABLESPACE_MAP";
}

std::string redact_conninfo(const std::string& conninfo) {
  static const std::regex key_value_pattern(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+))",
                                            std::regex::icase);
  static const std::regex uri_pattern(R"(^(postgres(?:ql)?://[^:@/]*:)[^@/]*@)", std::regex::icase);
  std::string out = std::regex_replace(conninfo, key_value_pattern, "$1********");
  return std::regex_replace(out, uri_pattern, "$1********@");
}

}  // namespace walvault::pg
