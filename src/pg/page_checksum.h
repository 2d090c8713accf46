// PostgreSQL's data page checksums (the pd_checksum field every page of a
// relation carries when the cluster runs with data_checksums): the
// algorithm, from its documentation in PostgreSQL's storage/checksum_impl.h,
// and the facts a reader of a live data directory needs to check a page
// (its LSN, whether it is new), and which files carry checksummed pages.
//
// The algorithm: the 8 KiB page, with pd_checksum taken as zero, is read as
// 64 rows of 32 native-order 32-bit words; each of the 32 columns
// folds its words into its own FNV-1a-like hash (h = (h ^ v) * 16777619 ^
// ((h ^ v) >> 17)), seeded with one of 32 fixed offsets, then two more
// rounds with 0; the 32 hashes are xor-ed, the block number xor-ed in, and
// the result reduced to 16 bits as (sum % 65535) + 1. The block number is
// the page's number in the relation fork (segment number x 131072 + the
// page's index in its 1 GiB segment file).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/bytes.h"

namespace walvault::pg {

inline constexpr std::size_t kPageSize = 8192;
// Pages of a relation segment file (RELSEG_SIZE at the default 1 GiB / 8 KiB).
inline constexpr std::uint32_t kPagesPerSegment = 131072;

// The checksum PostgreSQL stores in a page, computed over `page`
// (kPageSize bytes) as block `block_number`. The page's own pd_checksum
// does not take part.
std::uint16_t page_checksum(ByteView page, std::uint32_t block_number);

// The page header's fields a checker reads (native byte order, as the
// server writes them).
std::uint64_t page_lsn(ByteView page);
std::uint16_t page_stored_checksum(ByteView page);
// Every byte zero: a page the server extended the file with and never
// wrote (PostgreSQL does not checksum those).
bool page_is_zero(ByteView page);

enum class PageVerdict { kValid, kSkippedNew, kSkippedRecent, kBad };
// Checks one page read during an online backup that started at
// `backup_start_lsn`: all-zero pages and pages with an LSN at or past the
// start (possibly torn; WAL replay rewrites them) are skipped, others must
// carry their checksum.
PageVerdict check_page(ByteView page, std::uint32_t block_number, std::uint64_t backup_start_lsn);

// Whether `path` (relative to the data directory, or to a tablespace's
// location with `in_tablespace`) is a relation file whose pages carry
// checksums: below global/ or base/ (any file in a tablespace), except
// pg_control, pg_filenode.map, pg_internal.init* and PG_VERSION. On a
// match, the file's segment number ("16384.3" -> 3, "16384" -> 0);
// nullopt for other files or a malformed segment suffix.
std::optional<std::uint32_t> checksummed_segment(std::string_view path, bool in_tablespace);

}  // namespace walvault::pg
