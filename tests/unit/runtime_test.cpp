#include <gtest/gtest.h>

#include <cstdint>

#include "base/log.h"
#include "models/model.h"
#include "runtime/allocator.h"
#include "runtime/exec_context.h"
#include "runtime/tensor.h"
#include "runtime/workspace.h"

namespace fathom {
namespace {

TEST(Device, ToStringAndParse) {
  EXPECT_EQ(Device::cpu().to_string(), "cpu");
  EXPECT_EQ(Device::cuda(1).to_string(), "cuda:1");
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
  EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_FALSE(parse_device("cuda:").has_value());
  EXPECT_FALSE(parse_device("cuda:x").has_value());
  EXPECT_FALSE(parse_device("tpu").has_value());
  // The models layer keeps its names for the runtime types.
  models::Device d{models::DeviceKind::kCuda, 2};
  EXPECT_EQ(d.to_string(), "cuda:2");
}

TEST(Shape, NumelAndString) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank, 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.to_string(), "[2, 3, 4]");
  EXPECT_TRUE((s == Shape{2, 3, 4}));
  EXPECT_FALSE((s == Shape{2, 3}));
  EXPECT_THROW((Shape{1, 2, 3, 4, 5}), std::invalid_argument);
  TensorView v(nullptr, DType::kF16, Shape{5, 8});
  EXPECT_EQ(v.nbytes(), 80u);
  EXPECT_EQ(v.rows(), 5);
  EXPECT_EQ(v.cols(), 8);
  EXPECT_EQ(v.describe(), "float16[5, 8]@cpu");
}

TEST(CpuAllocator, AlignedAndAccounted) {
  MemoryAccount account("m");
  {
    auto a = Buffer::allocate(cpu_allocator(), 1000, &account);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a->data()) % 64, 0u);
    EXPECT_EQ(account.in_use(), 1000u);
    Buffer b = std::move(a).value();
    auto c = Buffer::allocate(cpu_allocator(), 24, &account);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(account.in_use(), 1024u);
  }
  EXPECT_EQ(account.in_use(), 0u);
  EXPECT_EQ(account.peak(), 1024u);
}

TEST(CpuAllocator, BudgetIsEnforcedWithAClearMessage) {
  MemoryAccount account("bge", 4096);
  auto a = Buffer::allocate(cpu_allocator(), 3000, &account);
  ASSERT_TRUE(a.ok());
  auto b = Buffer::allocate(cpu_allocator(), 2000, &account);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(b.error().message.find("budget"), std::string::npos);
  EXPECT_NE(b.error().message.find("4096 bytes"), std::string::npos);
  EXPECT_NE(b.error().message.find("bge"), std::string::npos);
  EXPECT_EQ(account.in_use(), 3000u);  // nothing charged on failure
}

TEST(Workspace, GrowsAndKeepsPointerWhenLargeEnough) {
  CpuExecContext cpu;
  auto p1 = cpu.ctx().workspace->get(100);
  ASSERT_TRUE(p1.ok());
  auto p2 = cpu.ctx().workspace->get(50);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(*p1, *p2);
  auto p3 = cpu.ctx().workspace->get(10000);
  ASSERT_TRUE(p3.ok());
  EXPECT_GE(cpu.ctx().workspace->capacity(), 10000u);
  EXPECT_EQ(cpu.account().in_use(), cpu.ctx().workspace->capacity());
}

TEST(Workspace, OverBudgetFails) {
  CpuExecContext cpu(1024);
  EXPECT_FALSE(cpu.ctx().workspace->get(4096).ok());
  EXPECT_TRUE(cpu.ctx().workspace->get(512).ok());
}

TEST(Log, ParseLevels) {
  EXPECT_EQ(parse_log_level("WARNING"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_FALSE(parse_log_level("loud").has_value());
  LogLevel before = log_level();
  set_log_level(LogLevel::kError);
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  int evaluated = 0;
  FATHOM_LOG(kInfo) << (++evaluated);
  EXPECT_EQ(evaluated, 0);  // disabled lines are not evaluated
  set_log_level(before);
}

}  // namespace
}  // namespace fathom
