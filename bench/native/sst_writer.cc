// Native baseline for `npm run bench -- sst`: writes N keys with rocksdb::SstFileWriter (librocksdb) using the
// same key/value generator as bench/sst.ts. Compiled at bench time: g++ -O2 sst_writer.cc -lrocksdb.
// usage: sst_writer OUT.sst N none|snappy|lz4|zstd BLOOM_BITS [PARALLEL_THREADS]
// PARALLEL_THREADS > 1 sets CompressionOptions::parallel_threads (RocksDB's own parallel block compression), the
// fair baseline for ferry's writer when it seals blocks on a worker thread.
// prints one JSON line: {"keys":N,"seconds":S,"cpuSeconds":C,"bytes":B} (Open -> Finish incl. fsync)
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static const int kPoolValues = 10007;
static const int kValueLen = 100;

// pool of values: 50 pseudo-random bytes + 50 bytes of text, so values compress about 2x
static std::vector<char> MakePool() {
  std::vector<char> pool(static_cast<size_t>(kPoolValues) * kValueLen);
  uint32_t x = 2463534242u;
  const char* text = "the quick brown fox jumps over the lazy dog 0123456789";
  for (int v = 0; v < kPoolValues; v++) {
    char* p = pool.data() + static_cast<size_t>(v) * kValueLen;
    for (int i = 0; i < 50; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      p[i] = static_cast<char>(x & 0xff);
    }
    memcpy(p + 50, text, 50);
  }
  return pool;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s OUT N none|snappy|lz4|zstd BLOOM_BITS\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  const long n = atol(argv[2]);
  const std::string codec = argv[3];
  const int bloom = atoi(argv[4]);
  const int threads = argc > 5 ? atoi(argv[5]) : 1;
  std::vector<char> pool = MakePool();

  rocksdb::Options options;
  if (codec == "none") options.compression = rocksdb::kNoCompression;
  else if (codec == "snappy") options.compression = rocksdb::kSnappyCompression;
  else if (codec == "lz4") options.compression = rocksdb::kLZ4Compression;
  else if (codec == "zstd") options.compression = rocksdb::kZSTD;
  else { fprintf(stderr, "unknown codec %s\n", codec.c_str()); return 2; }
  if (threads > 1) options.compression_opts.parallel_threads = static_cast<uint32_t>(threads);
  rocksdb::BlockBasedTableOptions bbto;
  bbto.format_version = 5;
  bbto.checksum = rocksdb::kCRC32c;
  if (bloom > 0) bbto.filter_policy.reset(rocksdb::NewBloomFilterPolicy(bloom, false));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(bbto));

  auto cpu = []() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  };
  const double c0 = cpu();
  auto t0 = std::chrono::steady_clock::now();
  rocksdb::SstFileWriter w(rocksdb::EnvOptions(), options);
  rocksdb::Status s = w.Open(out);
  if (!s.ok()) { fprintf(stderr, "open: %s\n", s.ToString().c_str()); return 1; }
  char key[17];
  for (long i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "%016ld", i);
    const char* v = pool.data() + static_cast<size_t>(i % kPoolValues) * kValueLen;
    s = w.Put(rocksdb::Slice(key, 16), rocksdb::Slice(v, kValueLen));
    if (!s.ok()) { fprintf(stderr, "put: %s\n", s.ToString().c_str()); return 1; }
  }
  rocksdb::ExternalSstFileInfo info;
  s = w.Finish(&info);
  if (!s.ok()) { fprintf(stderr, "finish: %s\n", s.ToString().c_str()); return 1; }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpuSecs = cpu() - c0;
  printf("{\"keys\":%ld,\"seconds\":%.4f,\"cpuSeconds\":%.4f,\"bytes\":%llu}\n", n, secs, cpuSecs,
         static_cast<unsigned long long>(info.file_size));
  return 0;
}
