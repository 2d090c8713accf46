#include "ops/drill.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>

#include "core/bytes.h"
#include "core/host.h"
#include "pg/sql_connection.h"
#include "repo/wal_objects.h"

namespace walvault::ops {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kScratchTemplate[] = "/var/tmp/walvault-drill-XXXXXX";

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

// The drill's directory: --scratch (created; must be empty) or a fresh one.
// Returns it and whether the drill created it.
std::pair<std::string, bool> make_scratch(const std::string& wanted) {
  if (wanted.empty()) {
    std::string templ = kScratchTemplate;
    if (::mkdtemp(templ.data()) == nullptr) throw_errno("drill: mkdtemp " + templ);
    return {templ, true};
  }
  if (wanted.front() != '/') throw Error(ErrorCode::kUsage, "--scratch: give an absolute path");
  std::error_code ec;
  if (fs::exists(wanted, ec)) {
    if (!fs::is_directory(wanted, ec) || !fs::is_empty(wanted, ec))
      throw Error(ErrorCode::kUsage,
                  "--scratch: " + wanted + " exists and is not an empty directory");
    return {wanted, false};
  }
  fs::create_directories(wanted, ec);
  if (ec) throw Error(ErrorCode::kIo, "drill: creating " + wanted + ": " + ec.message());
  return {wanted, true};
}

// Removes what the drill put in `dir`, and `dir` itself when the drill made it.
// A failure only warns: the drill's outcome is already decided.
void remove_scratch(const std::string& dir, bool created) {
  std::error_code ec;
  if (created) {
    fs::remove_all(dir, ec);
  } else {
    for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
  }
  if (ec) spdlog::warn("drill: removing {}: {}", dir, ec.message());
}

DrillServerOptions server_options(const DrillOptions& o, const DrillPlan& plan,
                                  const std::string& scratch) {
  DrillServerOptions so;
  so.scratch = scratch;
  so.bin_dir = pg::server_bin_dir(plan.pg_version_num, o.pg_bin);
  so.run_as = o.run_as;
  so.db_user = o.db_user;
  so.dbname = o.dbname;
  so.port = drill_port();
  so.wal_segments = plan.wal_segments;
  so.request_promotion = plan.promote_at_pause;
  repo::Repository* repo = plan.repo;
  so.segment_archived = [repo](const std::string& segment) {
    return repo->store().stat(repo::segment_object_name(segment)).has_value();
  };
  return so;
}

// Restores the plan into the server's data directory: the "restore: " step.
void restore_into(DrillServer& server, const DrillPlan& plan, const DrillSteps& steps,
                  Clock::time_point t0, DrillReport& r) {
  steps.progress("restoring backup " + plan.label + " (" + human_bytes(plan.logical_bytes) +
                 "), target " + plan.target + " on timeline " +
                 std::to_string(plan.target_timeline) + ", into " + r.scratch);
  try {
    r.restored = steps.restore(server.pgdata(), server.settings());
  } catch (const Error& e) {
    throw Error(e.code(), std::string("restore: ") + e.what());
  }
  r.restore_s = since(t0);
  steps.progress("restored " + std::to_string(r.restored->files) + " files, " +
                 human_bytes(r.restored->bytes) + " (" + secs(*r.restore_s) + ")");
}

// The steps after the plan, each recorded in `r` as it ends; throws Error
// for the first that fails (the server is stopped on the way out).
// `scratch_created`: whether the drill made r.scratch (else it only empties it).
void run_steps(const DrillOptions& o, const DrillSteps& steps, Clock::time_point t0, DrillReport& r,
               bool& scratch_created) {
  r.plan = steps.plan();
  const DrillPlan& plan = *r.plan;
  std::tie(r.scratch, scratch_created) = make_scratch(o.scratch);
  DrillServer server(server_options(o, plan, r.scratch));
  restore_into(server, plan, steps, t0, r);

  server.prepare();
  if (!plan.wal_segments.empty())
    server.try_restore_command(o.restore_command, plan.wal_segments.front());
  r.verifybackup = server.verify_backup();
  if (r.verifybackup->starts_with("skipped"))
    spdlog::warn("drill: pg_verifybackup {}", *r.verifybackup);
  else
    steps.progress("pg_verifybackup: " + *r.verifybackup);

  server.start_and_recover(t0 + o.timeout);
  r.recovery_s = since(t0);
  steps.progress("recovery finished, server promoted (" + secs(*r.recovery_s) + ")");

  r.checks = server.run_checks(o.checks, o.check_script, t0);
  r.total_s = since(t0);
  for (const auto& line : r.checks->lines) steps.progress(line);
  server.stop();
  const CheckOutcome& c = *r.checks;
  if (!c.first_failure.empty())
    throw Error(
        ErrorCode::kPostgres,
        c.first_failure + (c.failed > 1 ? " (and " + std::to_string(c.failed - 1) + " more)" : ""));
  if (o.target_rto && *r.total_s > static_cast<double>(o.target_rto->count()))
    throw Error(ErrorCode::kPostgres, "target RTO exceeded: took " + secs(*r.total_s) +
                                          ", target " + std::to_string(o.target_rto->count()) +
                                          " s");
  r.summary = "backup " + plan.label + ": restore " + secs(*r.restore_s) + ", recovery " +
              secs(*r.recovery_s) + ", first query " +
              (c.first_query_s ? secs(*c.first_query_s) : std::string("-")) + ", total " +
              secs(*r.total_s) + "; " + std::to_string(c.passed) + " checks passed";
}

}  // namespace

int drill_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("drill: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw_errno("drill: finding a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

DrillServer::DrillServer(DrillServerOptions options)
    : options_(std::move(options)),
      pgdata_(options_.scratch + "/data"),
      user_(server_user()),
      control_(options_.bin_dir, pgdata_, user_, options_.scratch) {
  if (!user_) options_.run_as = user_name();
}

std::optional<UserIdentity> DrillServer::server_user() const {
  if (::geteuid() != 0) return std::nullopt;
  std::optional<UserIdentity> user = find_user(options_.run_as);
  if (!user || user->uid == 0)
    throw Error(ErrorCode::kUsage, "--run-as: '" + options_.run_as +
                                       "' is not an unprivileged user of this system "
                                       "(PostgreSQL refuses to run as root)");
  return user;
}

DrillServer::~DrillServer() { stop(); }

std::string DrillServer::db_user() const {
  return options_.db_user.empty() ? options_.run_as : options_.db_user;
}

std::vector<std::pair<std::string, std::string>> DrillServer::settings() const {
  // Values as they are: write_recovery_settings quotes each one.
  return {{"port", std::to_string(options_.port)},
          {"listen_addresses", ""},
          {"unix_socket_directories", socket_dir()},
          {"hba_file", options_.scratch + "/pg_hba.conf"},
          {"archive_mode", "off"},
          {"primary_conninfo", ""},
          {"primary_slot_name", ""},
          {"recovery_end_command", ""},
          {"archive_cleanup_command", ""},
          {"hot_standby", "on"},
          {"ssl", "off"},
          {"logging_collector", "off"},
          {"log_destination", "stderr"}};
}

void DrillServer::prepare() {
  fs::create_directories(socket_dir());
  ::chmod(socket_dir().c_str(), 0700);
  // Trust on the private socket only: the directory is the server user's,
  // mode 0700, so only that user (and root) can connect.
  std::ofstream(options_.scratch + "/pg_hba.conf") << "local all all trust\n";
  if (!user_) return;
  std::error_code ec;
  if (::chown(options_.scratch.c_str(), user_->uid, user_->gid) != 0)
    throw_errno("drill: chown " + options_.scratch);
  for (const auto& entry : fs::recursive_directory_iterator(options_.scratch, ec))
    if (::lchown(entry.path().c_str(), user_->uid, user_->gid) != 0)
      throw_errno("drill: chown " + entry.path().string());
  if (ec) throw Error(ErrorCode::kIo, "drill: " + options_.scratch + ": " + ec.message());
}

void DrillServer::try_restore_command(const std::string& restore_command,
                                      const std::string& segment) {
  const std::string target = options_.scratch + "/restore_command.test";
  const ProgramResult run =
      control_.run({"/bin/sh", "-c", pg::expand_restore_command(restore_command, segment, target)});
  ::unlink(target.c_str());
  const std::string said = last_output_line(run.output);
  if (run.status != 0)
    throw Error(ErrorCode::kIo, "restore_command: fetching " + segment + " as user " +
                                    options_.run_as + " failed (exit status " +
                                    std::to_string(run.status) + ")" +
                                    (said.empty() ? "" : ": " + said));
}

std::string DrillServer::verify_backup() {
  if (!control_.has_program("pg_verifybackup"))
    return "skipped: " + control_.program("pg_verifybackup") + " not found (give --pg-bin)";
  struct stat st {};
  if (::stat((pgdata_ + "/backup_manifest").c_str(), &st) != 0 || st.st_size == 0)
    return "skipped: the backup has no backup_manifest";
  const ProgramResult run = control_.verify_backup();
  if (run.status != 0) {
    std::string first;
    std::istringstream in(run.output);
    std::getline(in, first);
    throw Error(ErrorCode::kCorruption, "pg_verifybackup: " + first);
  }
  return last_output_line(run.output);
}

std::string DrillServer::conninfo() const {
  return "host=" + socket_dir() + " port=" + std::to_string(options_.port) + " user=" + db_user() +
         " dbname=" + options_.dbname + " connect_timeout=10";
}

bool DrillServer::alive() const { return pg::postmaster_alive(pgdata_); }

std::string DrillServer::server_log() const {
  std::ifstream in(log_file(), std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string DrillServer::failure_reason() const {
  const std::string log = server_log();
  // The segment after the last one restored is where replay stopped; when
  // the archive lacks it, that is the reason (PostgreSQL only says that the
  // WAL ended).
  const std::string last_restored = pg::last_restored_segment(log);
  const auto& segs = options_.wal_segments;
  std::optional<std::string> next;
  if (last_restored.empty()) {
    if (!segs.empty()) next = segs.front();
  } else {
    for (std::size_t i = 0; i < segs.size(); ++i)
      if (segs[i] == last_restored && i + 1 < segs.size()) next = segs[i + 1];
  }
  const std::string fatal = pg::last_fatal(log);
  const std::string server = fatal.empty() ? "" : " (server: " + fatal + ")";
  if (next && options_.segment_archived && !options_.segment_archived(*next))
    return "WAL segment " + *next + " missing from the archive" + server;
  // Replay may stop before the log shows which segment it wanted (the
  // checkpoint record of backup_label lies in a later segment than its redo
  // point): the first segment of the plan the archive lacks is the reason.
  if (options_.segment_archived)
    for (const std::string& seg : segs)
      if (!options_.segment_archived(seg))
        return "WAL segment " + seg + " missing from the archive" + server;
  if (!fatal.empty()) return fatal;
  return "the server stopped; see " + log_file();
}

void DrillServer::start_and_recover(std::chrono::steady_clock::time_point deadline) {
  if (!control_.has_program("pg_ctl"))
    throw Error(ErrorCode::kUsage, "server did not start: " + control_.program("pg_ctl") +
                                       " not found (give --pg-bin)");
  const auto wait_s = std::max<long long>(
      1, std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now()).count());
  started_ = true;
  const ProgramResult start = control_.start(log_file(), wait_s);
  const auto recovery_failed = [&](const std::string& why) {
    const bool missing = why.starts_with("WAL segment ");
    return Error(missing ? ErrorCode::kNotFound : ErrorCode::kPostgres,
                 "recovery did not finish: " + why);
  };
  if (start.status != 0) {
    if (alive()) throw recovery_failed("not consistent within the --timeout");
    const std::string log = server_log();
    if (log.find("starting") != std::string::npos && log.find("recovery") != std::string::npos)
      throw recovery_failed(failure_reason());
    const std::string fatal = pg::last_fatal(log);
    throw Error(ErrorCode::kPostgres, "server did not start: " +
                                          (fatal.empty() ? last_output_line(start.output) : fatal));
  }
  // Taken when replay pauses at the target (ops/start_restored.h); refused
  // only when recovery is already over, which the wait below sees.
  if (options_.request_promotion) control_.promote();
  for (;;) {
    try {
      pg::SqlConnection conn(conninfo(), "walvault drill");
      if (conn.row("select pg_is_in_recovery()::text").at(0) == "false") return;
    } catch (const Error&) {
      // not accepting connections at this moment: judged below
    }
    if (!alive()) throw recovery_failed(failure_reason());
    if (Clock::now() >= deadline) throw recovery_failed("still in recovery at the --timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

CheckOutcome DrillServer::run_checks(const std::vector<DrillCheck>& checks,
                                     const std::string& script,
                                     std::chrono::steady_clock::time_point t0) {
  CheckOutcome out;
  const auto fail = [&](const std::string& what) {
    ++out.failed;
    out.lines.push_back(what);
    if (out.first_failure.empty()) out.first_failure = what;
  };
  const std::vector<DrillCheck> first_query = {{"select 1", "1"}};
  const bool sql_given = !checks.empty();
  const auto& sql_checks = sql_given ? checks : first_query;
  for (std::size_t i = 0; i < sql_checks.size(); ++i) {
    const DrillCheck& c = sql_checks[i];
    const std::string name =
        sql_given ? "check " + std::to_string(i + 1) + " (" + c.sql + ")" : "first query";
    try {
      // A new session per check: one failing statement cannot spoil the next.
      pg::SqlConnection conn(conninfo(), "walvault drill");
      const std::string got = conn.row(c.sql).at(0);
      if (!out.first_query_s) out.first_query_s = since(t0);
      if (got == c.expect) {
        if (sql_given) {
          ++out.passed;
          out.lines.push_back(name + " passed: " + got);
        }
      } else {
        fail(name + " failed: got '" + got + "', expected '" + c.expect + "'");
      }
    } catch (const Error& e) {
      fail(name + " failed: " + e.what());
    }
  }
  if (!script.empty()) {
    ProgramRun run{{script}, {}, std::nullopt, ""};
    run.environment.set = {{"PGHOST", socket_dir()},
                           {"PGPORT", std::to_string(options_.port)},
                           {"PGDATA", pgdata_},
                           {"PGUSER", db_user()},
                           {"PGDATABASE", options_.dbname}};
    const ProgramResult result = run_program(run);
    if (result.status == 0) {
      ++out.passed;
      out.lines.push_back("check script " + script + " passed");
    } else {
      const std::string tail = last_output_line(result.output);
      fail("check script " + script + " failed (exit status " + std::to_string(result.status) +
           ")" + (tail.empty() ? "" : ": " + tail));
    }
  }
  return out;
}

void DrillServer::stop() noexcept {
  if (!started_) return;
  started_ = false;
  try {
    if (!alive()) return;
    if (control_.stop(pg::StopMode::kFast).status != 0) control_.stop(pg::StopMode::kImmediate);
  } catch (...) {
    // the server is a scratch copy: a failure to stop it is only noise
  }
}

DrillReport run_drill(const DrillOptions& options, const DrillSteps& steps) {
  const auto t0 = Clock::now();
  DrillReport r;
  r.target_rto = options.target_rto;
  bool scratch_created = false;
  try {
    run_steps(options, steps, t0, r, scratch_created);
  } catch (const Error& e) {
    r.failure = e.what();
    r.failure_code = e.code();
  } catch (const std::exception& e) {  // std::filesystem on the scratch directory
    r.failure = e.what();
    r.failure_code = ErrorCode::kIo;
  }
  if (r.scratch.empty()) return r;
  if (options.keep) {
    r.scratch_kept = true;
    steps.progress("kept " + r.scratch + " (server stopped; log in " + r.scratch + "/server.log)");
  } else {
    remove_scratch(r.scratch, scratch_created);
  }
  return r;
}

repo::HistoryEntry drill_history(const DrillReport& r, repo::HistoryEntry entry) {
  nlohmann::json& extra = entry.extra;
  const auto optional_json = [](const auto& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  };
  extra["rto_s"] = r.target_rto ? nlohmann::json(r.target_rto->count()) : nlohmann::json(nullptr);
  extra["checks_passed"] = r.checks ? r.checks->passed : 0;
  extra["checks_failed"] = r.checks ? r.checks->failed : 0;
  if (r.plan) {
    extra["label"] = r.plan->label;
    extra["target"] = r.plan->target;
  }
  if (r.restored) entry.bytes = r.restored->bytes;
  if (r.restore_s) extra["restore_s"] = *r.restore_s;
  if (r.verifybackup) extra["verifybackup"] = *r.verifybackup;
  if (r.recovery_s) extra["recovery_s"] = *r.recovery_s;
  if (r.checks) {
    extra["first_query_s"] = optional_json(r.checks->first_query_s);
    extra["total_s"] = optional_json(r.total_s);
  }
  if (r.scratch_kept && !r.scratch.empty()) extra["scratch"] = r.scratch;
  entry.outcome = r.passed() ? "ok" : "failed";
  entry.detail = r.passed() ? r.summary : r.failure;
  extra["reason"] = r.passed() ? nlohmann::json(nullptr) : nlohmann::json(r.failure);
  return entry;
}

}  // namespace walvault::ops
