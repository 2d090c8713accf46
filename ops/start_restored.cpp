#include "ops/start_restored.h"

#include <unistd.h>

#include <thread>

#include "core/error.h"
#include "core/file_util.h"
#include "pg/server_control.h"

namespace walvault::ops {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string log_text(const std::string& log_file) {
  auto bytes = read_file(log_file);
  return bytes ? std::string(as_chars(*bytes)) : std::string();
}

// Why the server is gone: its last FATAL or PANIC, else where its log is.
std::string why_gone(const std::string& log_file) {
  const std::string fatal = pg::last_fatal(log_text(log_file));
  return fatal.empty() ? "the server stopped; see " + log_file : fatal;
}

}  // namespace

void check_can_start(const std::string& bin_dir) {
  if (::geteuid() == 0)
    throw Error(ErrorCode::kUsage,
                "--start: the files of a restore run as root belong to root, and PostgreSQL "
                "refuses to run as root: run restore as the server's user");
  if (::access((bin_dir + "/pg_ctl").c_str(), X_OK) != 0)
    throw Error(ErrorCode::kUsage, "--start: " + bin_dir + "/pg_ctl not found (give --pg-bin)");
}

StartRestoredReport start_restored_server(const StartRestoredOptions& o) {
  check_can_start(o.bin_dir);
  pg::ServerControl control(o.bin_dir, o.pgdata, std::nullopt, o.pgdata);
  const auto t0 = Clock::now();
  const auto deadline = t0 + o.timeout;
  const auto recovery_failed = [&] {
    return Error(ErrorCode::kPostgres, "recovery did not finish: " + why_gone(o.log_file));
  };
  StartRestoredReport report;
  // pg_ctl -w returns once the server accepts connections: read-only ones
  // during recovery (hot standby), or writes when recovery is already over.
  const ProgramResult start = control.start(o.log_file, std::max<long long>(1, o.timeout.count()));
  if (start.status != 0) {
    if (pg::postmaster_alive(o.pgdata))
      throw Error(ErrorCode::kPostgres,
                  "recovery did not finish: the server accepts no connections at the "
                  "--start-timeout (still recovering; see " +
                      o.log_file + ")");
    const std::string log = log_text(o.log_file);
    if (log.find("recovery") != std::string::npos) throw recovery_failed();
    const std::string fatal = pg::last_fatal(log);
    throw Error(ErrorCode::kPostgres, "server did not start: " +
                                          (fatal.empty() ? last_output_line(start.output) : fatal));
  }
  report.accepting_s = since(t0);
  // From here pg_control tells recovery from production: the startup
  // process rewrote the restored one before the server took connections.
  const auto writable = [&] {
    return pg::cluster_state(o.pgdata) == pg::ClusterState::kInProduction;
  };
  if (o.request_promotion && !writable()) {
    const ProgramResult promote = control.promote();
    // Refused only when recovery ended meanwhile (the server is then
    // writable or gone, as the wait below finds out).
    if (promote.status != 0 && !writable() && pg::postmaster_alive(o.pgdata))
      throw Error(ErrorCode::kPostgres,
                  "pg_ctl promote failed: " + last_output_line(promote.output));
  }
  if (!o.until_writable) {
    report.done_s = since(t0);
    report.writable = writable();
    return report;
  }
  for (;;) {
    if (writable()) break;
    if (!pg::postmaster_alive(o.pgdata)) throw recovery_failed();
    if (Clock::now() >= deadline)
      throw Error(ErrorCode::kPostgres,
                  "recovery did not finish: still in recovery at the --start-timeout (the "
                  "server runs on; see " +
                      o.log_file + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  report.done_s = since(t0);
  report.writable = true;
  return report;
}

}  // namespace walvault::ops
