// SigV4 against published expectations: cases of AWS's Signature Version 4
// test suite (aws-sig-v4-test-suite, service "service") and the worked
// examples of the S3 API reference ("examplebucket", AKIAIOSFODNN7EXAMPLE).
#include "store/s3/s3_sigv4.h"

#include <gtest/gtest.h>

#include <string>

namespace walvault::store::sigv4 {
namespace {

constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The test suite's fixed request context.
constexpr char kSuiteDate[] = "20150830T123600Z";
const Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

SignedRequest suite_request(const std::string& method) {
  return SignedRequest{
      method, "/", {}, {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteDate}}, kEmptyHash};
}

std::string suite_authorization(const std::string& signed_names, const std::string& signature) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" +
         signed_names + ", Signature=" + signature;
}

std::string sign_suite(const SignedRequest& request) {
  return authorization(request, kSuiteCredentials, "us-east-1", "service", kSuiteDate);
}

TEST(SigV4Suite, GetVanilla) {
  const SignedRequest request = suite_request("GET");
  const std::string creq = canonical_request(request);
  EXPECT_EQ(creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n" +
                std::string(kEmptyHash));
  EXPECT_EQ(string_to_sign(kSuiteDate, "20150830/us-east-1/service/aws4_request", creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(
      sign_suite(request),
      suite_authorization("host;x-amz-date",
                          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

TEST(SigV4Suite, PostVanilla) {
  const SignedRequest request = suite_request("POST");
  EXPECT_EQ(
      sign_suite(request),
      suite_authorization("host;x-amz-date",
                          "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
}

TEST(SigV4Suite, GetVanillaQueryOrderKeyCase) {
  SignedRequest request = suite_request("GET");
  request.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  const std::string creq = canonical_request(request);
  EXPECT_EQ(creq,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
                std::string(kEmptyHash));
  EXPECT_EQ(sha256_hex(as_bytes(creq)),
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
  EXPECT_EQ(
      sign_suite(request),
      suite_authorization("host;x-amz-date",
                          "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
}

TEST(SigV4Suite, PostHeaderValueCase) {
  SignedRequest request = suite_request("POST");
  request.headers.emplace_back("My-Header1", "VALUE1");
  EXPECT_EQ(
      sign_suite(request),
      suite_authorization("host;my-header1;x-amz-date",
                          "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"));
}

TEST(SigV4Suite, GetHeaderValueTrim) {
  SignedRequest request = suite_request("GET");
  request.headers.emplace_back("My-Header1", " value1");
  request.headers.emplace_back("My-Header2", "\"a   b   c\"");
  EXPECT_NE(canonical_request(request).find("my-header2:\"a b c\"\n"), std::string::npos);
  EXPECT_EQ(
      sign_suite(request),
      suite_authorization("host;my-header1;my-header2;x-amz-date",
                          "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"));
}

TEST(SigV4Suite, GetUnreserved) {
  SignedRequest request = suite_request("GET");
  request.canonical_uri =
      uri_encode("/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", true);
  EXPECT_EQ(
      sign_suite(request),
      suite_authorization("host;x-amz-date",
                          "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"));
}

// The S3 API reference's examples (us-east-1, 2013-05-24).
constexpr char kS3Date[] = "20130524T000000Z";
const Credentials kS3Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                 ""};

std::string s3_signature_of(const SignedRequest& request) {
  const std::string header = authorization(request, kS3Credentials, "us-east-1", "s3", kS3Date);
  const auto at = header.find("Signature=");
  EXPECT_NE(at, std::string::npos);
  EXPECT_EQ(header.find("wJalrXUtnFEMI"), std::string::npos) << "the secret leaked";
  return header.substr(at + 10);
}

TEST(SigV4S3Examples, GetObjectWithRange) {
  const SignedRequest request{"GET",
                              "/test.txt",
                              {},
                              {{"Host", "examplebucket.s3.amazonaws.com"},
                               {"Range", "bytes=0-9"},
                               {"x-amz-content-sha256", kEmptyHash},
                               {"x-amz-date", kS3Date}},
                              kEmptyHash};
  EXPECT_EQ(signed_headers(request), "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(sha256_hex(as_bytes(canonical_request(request))),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s3_signature_of(request),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4S3Examples, PutObject) {
  const std::string payload_hash = sha256_hex(as_bytes("Welcome to Amazon S3."));
  EXPECT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const SignedRequest request{"PUT",
                              uri_encode("/test$file.text", true),
                              {},
                              {{"Host", "examplebucket.s3.amazonaws.com"},
                               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                               {"x-amz-content-sha256", payload_hash},
                               {"x-amz-date", kS3Date},
                               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                              payload_hash};
  EXPECT_EQ(request.canonical_uri, "/test%24file.text");
  EXPECT_EQ(s3_signature_of(request),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

SignedRequest s3_bucket_get(std::vector<std::pair<std::string, std::string>> query) {
  return SignedRequest{"GET",
                       "/",
                       std::move(query),
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"x-amz-content-sha256", kEmptyHash},
                        {"x-amz-date", kS3Date}},
                       kEmptyHash};
}

TEST(SigV4S3Examples, GetBucketLifecycleQueryWithoutValue) {
  const SignedRequest request = s3_bucket_get({{"lifecycle", ""}});
  EXPECT_EQ(canonical_query_string(request.query), "lifecycle=");
  EXPECT_EQ(s3_signature_of(request),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4S3Examples, ListObjectsSortsTheQuery) {
  const SignedRequest request = s3_bucket_get({{"prefix", "J"}, {"max-keys", "2"}});
  EXPECT_EQ(canonical_query_string(request.query), "max-keys=2&prefix=J");
  EXPECT_EQ(s3_signature_of(request),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, UriEncodeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(uri_encode("a-b_c.d~e/F0", true), "a-b_c.d~e/F0");
  EXPECT_EQ(uri_encode("a b/c+d=\xc3\xa9", false), "a%20b%2Fc%2Bd%3D%C3%A9");
  // Continuation tokens are opaque and may carry '/', '+' and '='.
  EXPECT_EQ(canonical_query_string({{"continuation-token", "1/a+b=="}, {"list-type", "2"}}),
            "continuation-token=1%2Fa%2Bb%3D%3D&list-type=2");
}

TEST(SigV4, AmzDateIsUtc) {
  EXPECT_EQ(amz_date(1440938160), "20150830T123600Z");
  EXPECT_EQ(amz_date(0), "19700101T000000Z");
}

}  // namespace
}  // namespace walvault::store::sigv4
