// The pure parts of the BASE_BACKUP client: command syntax per server
// version and password redaction. The protocol itself is tested against real
// servers in tests/integration/base_backup_test.cpp.
#include <gtest/gtest.h>

#include "pg/base_backup.h"

namespace walvault::pg {
namespace {

TEST(BaseBackupCommand, OptionListOn15) {
  BaseBackupOptions options;
  options.label = "it's";
  options.manifest_checksums = ManifestChecksums::kSha256;
  EXPECT_EQ(base_backup_command(options, 150018),
            "BASE_BACKUP (LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAIT false, MANIFEST 'yes', "
            "MANIFEST_CHECKSUMS 'SHA256', TABLESPACE_MAP)");
  options.checkpoint = CheckpointMode::kSpread;
  options.manifest = false;
  options.progress = false;
  EXPECT_EQ(base_backup_command(options, 170000),
            "BASE_BACKUP (LABEL 'it''s', CHECKPOINT 'spread', WAIT false, TABLESPACE_MAP)");
}

TEST(BaseBackupCommand, KeywordsBefore15) {
  BaseBackupOptions options;
  options.label = "x";
  EXPECT_EQ(base_backup_command(options, 140010),
            "BASE_BACKUP LABEL 'x' PROGRESS FAST NOWAIT MANIFEST 'yes' MANIFEST_CHECKSUMS 'CRC32C' "
            "TABLESPACE_MAP");
  options.checkpoint = CheckpointMode::kSpread;
  options.manifest = false;
  EXPECT_EQ(base_backup_command(options, 130000),
            "BASE_BACKUP LABEL 'x' PROGRESS NOWAIT TABLESPACE_MAP");
}

TEST(RedactConninfo, KeyValueAndUri) {
  EXPECT_EQ(redact_conninfo("host=db user=u password=s3cret port=5432"),
            "host=db user=u password=******** port=5432");
  EXPECT_EQ(redact_conninfo("host=db PASSWORD = 'a b\\' c' user=u"),
            "host=db PASSWORD = ******** user=u");
  EXPECT_EQ(redact_conninfo("postgresql://u:s3cret@db:5432/x?sslmode=require"),
            "postgresql://u:********@db:5432/x?sslmode=require");
  EXPECT_EQ(redact_conninfo("postgres://db/x?user=u&password=s3cret&sslmode=require"),
            "postgres://db/x?user=u&password=********&sslmode=require");
  EXPECT_EQ(redact_conninfo("host=db user=u"), "host=db user=u");
}

}  // namespace
}  // namespace walvault::pg
