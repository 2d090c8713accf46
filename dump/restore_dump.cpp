#include "dump/restore_dump.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "core/error.h"
#include "core/process.h"
#include "dump/pg_programs.h"
#include "repo/chunk_store.h"

namespace walvault::dump {
namespace {

// The program that restores `record` and its argv.
std::vector<std::string> restore_argv(const DumpRecord& record, const RestoreDumpOptions& options,
                                      const std::string& program) {
  const std::string db = dbname_argument(options.database);
  if (record.format == DumpFormat::kPlain)
    return {program,   "--no-password",         "--no-psqlrc",
            "--quiet", "--set=ON_ERROR_STOP=1", "--output=/dev/null",
            db};
  std::vector<std::string> argv = {program, "--no-password", "--exit-on-error", db};
  for (const std::string& t : options.tables) argv.push_back("--table=" + t);
  return argv;
}

// Writes all of `data` into `fd`; false when the reader went away (EPIPE).
bool write_all(int fd, ByteView data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) return false;
    if (n < 0) throw_errno("writing into the restore program");
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

RestoreDumpResult restore_dump(repo::Repository& repo, const DumpRecord& record,
                               const RestoreDumpOptions& options) {
  const std::string who =
      "dump " + dump_id(record) + " (" + record.database + "/" + record.label + ")";
  if (record.format == DumpFormat::kPlain && !options.tables.empty())
    throw Error(ErrorCode::kUsage,
                "--table needs a custom-format dump; " + who + " is plain SQL (restored by psql)");
  RestoreDumpResult result;
  result.program = record.format == DumpFormat::kCustom ? "pg_restore" : "psql";
  const std::string program =
      client_program(server_version(options.conninfo), options.pg_bin, result.program);
  repo::ChunkStore chunks(repo);
  ::signal(SIGPIPE, SIG_IGN);
  StreamingProgram running(client_run(restore_argv(record, options, program), options.conninfo),
                           StreamingProgram::Pipe::kStdin);
  Bytes scratch;
  for (std::size_t i = 0; i < record.chunks.size(); ++i) {
    const files::ChunkRef& ref = record.chunks[i];
    const std::optional<ByteView> data =
        chunks.read_view(ref.id, scratch, repo::ChunkCheck::kRecorded);
    if (!data)
      throw Error(ErrorCode::kCorruption, who + ": chunk " + std::to_string(i) + " (" +
                                              to_hex(ref.id) + ") is not in the repository");
    if (data->size() != ref.length)
      throw Error(ErrorCode::kCorruption, who + ": chunk " + std::to_string(i) + " holds " +
                                              std::to_string(data->size()) + " bytes, not " +
                                              std::to_string(ref.length));
    if (!write_all(running.fd(), *data)) break;
    result.bytes_sent += data->size();
  }
  const ProgramResult done = running.wait();
  if (done.status != 0)
    throw Error(ErrorCode::kPostgres, result.program + " of " + who + " into database " +
                                          options.database + " failed (exit " +
                                          std::to_string(done.status) +
                                          "): " + failure_line(done.output));
  return result;
}

}  // namespace walvault::dump
