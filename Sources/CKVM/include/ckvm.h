// The only place HVKit includes kernel headers: linux/kvm.h structs, the
// ioctl request numbers (C macros Swift cannot import) as constants, and
// non-variadic wrappers around the calls Swift cannot make directly.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stdint.h>
#include <stddef.h>

extern const unsigned long CKVM_GET_API_VERSION;
extern const unsigned long CKVM_CREATE_VM;
extern const unsigned long CKVM_CHECK_EXTENSION;
extern const unsigned long CKVM_GET_VCPU_MMAP_SIZE;
extern const unsigned long CKVM_CREATE_VCPU;
extern const unsigned long CKVM_SET_USER_MEMORY_REGION;
extern const unsigned long CKVM_RUN;
extern const unsigned long CKVM_GET_REGS;
extern const unsigned long CKVM_SET_REGS;
extern const unsigned long CKVM_GET_SREGS;
extern const unsigned long CKVM_SET_SREGS;
extern const unsigned long CKVM_SET_TSS_ADDR;
extern const unsigned long CKVM_GET_SUPPORTED_CPUID;
extern const unsigned long CKVM_SET_CPUID2;
extern const unsigned long CKVM_TRANSLATE;
extern const unsigned long CKVM_CREATE_IRQCHIP;
extern const unsigned long CKVM_SET_IDENTITY_MAP_ADDR;

extern const uint32_t CKVM_MEM_READONLY;
extern const int CKVM_CAP_USER_MEMORY;
extern const int CKVM_CAP_READONLY_MEM;
extern const int CKVM_CAP_NR_MEMSLOTS;
extern const int CKVM_CAP_IRQCHIP;
extern const int CKVM_CAP_PIT2;
extern const int CKVM_CAP_IMMEDIATE_EXIT;
extern const int CKVM_CAP_SET_TSS_ADDR;
extern const int CKVM_CAP_SET_IDENTITY_MAP_ADDR;

/// ioctl(2) with one pointer argument; returns -1 and sets errno on failure.
int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument);
/// ioctl(2) with one integer argument.
int ckvm_ioctl_int(int fd, unsigned long request, unsigned long argument);
/// The current errno (Swift's view of errno is not reliable across calls).
int ckvm_errno(void);

/// Accessors for the kvm_run union members the runner reads.
struct kvm_run;
uint32_t ckvm_exit_reason(const struct kvm_run *run);
uint8_t ckvm_io_direction(const struct kvm_run *run);
uint8_t ckvm_io_size(const struct kvm_run *run);
uint16_t ckvm_io_port(const struct kvm_run *run);
uint32_t ckvm_io_count(const struct kvm_run *run);
uint64_t ckvm_io_data_offset(const struct kvm_run *run);
uint64_t ckvm_mmio_address(const struct kvm_run *run);
uint8_t *ckvm_mmio_data(struct kvm_run *run);
uint32_t ckvm_mmio_length(const struct kvm_run *run);
uint8_t ckvm_mmio_is_write(const struct kvm_run *run);
uint32_t ckvm_internal_suberror(const struct kvm_run *run);
uint64_t ckvm_fail_entry_reason(const struct kvm_run *run);


/// Turns on user-space exits for MSR accesses the filter denies.
int ckvm_enable_user_msr_exits(int vm_fd);
/// Installs an MSR filter of four 0x2000-MSR ranges (reads of 0x0 and of
/// 0xC0000000, writes of each); in each bitmap a set bit ALLOWS the access
/// (KVM's convention). With default_deny, MSRs outside the ranges exit too.
int ckvm_set_msr_filter(int vm_fd, int default_deny, const uint8_t *read_low, const uint8_t *read_high,
                        const uint8_t *write_low, const uint8_t *write_high);
uint32_t ckvm_msr_index(const struct kvm_run *run);
uint64_t ckvm_msr_data(const struct kvm_run *run);
void ckvm_msr_complete(struct kvm_run *run, uint64_t data, uint8_t error);

/// KVM_GET_MSRS on the /dev/kvm descriptor: a feature MSR such as
/// IA32_VMX_BASIC (0x480). Returns 1 when read, 0 when KVM does not expose
/// it, -1 with errno on failure.
int ckvm_get_feature_msr(int kvm_fd, uint32_t index, uint64_t *value);

/// KVM_GET_SUPPORTED_CPUID into `entries` (room for `*count`); on return
/// `*count` holds the number KVM filled. -1 with errno on failure (E2BIG:
/// too little room).
int ckvm_get_supported_cpuid(int kvm_fd, struct kvm_cpuid_entry2 *entries, uint32_t *count);
/// KVM_SET_CPUID2 on a vCPU with `count` entries.
int ckvm_set_cpuid2(int vcpu_fd, const struct kvm_cpuid_entry2 *entries, uint32_t count);
/// KVM_CREATE_PIT2 with no flags (the PIT's interrupt goes to the in-kernel
/// irqchip's line 0).
int ckvm_create_pit2(int vm_fd);
/// KVM_IRQ_LINE: sets interrupt line `irq` of the in-kernel irqchip to `level`.
int ckvm_irq_line(int vm_fd, uint32_t irq, uint32_t level);
/// kvm_run.immediate_exit: when set, KVM_RUN returns at once with EINTR.
void ckvm_set_immediate_exit(struct kvm_run *run, uint8_t value);

/// A wall-clock watchdog for the calling thread's vCPU: after `nanoseconds`
/// the kernel sends `signo` to this thread (a POSIX timer aimed at the
/// thread, no helper thread needed). The handler sets `run->immediate_exit`,
/// so a KVM_RUN in progress returns EINTR and one entered later returns at
/// once. The signal is unblocked in this thread while armed. Returns 0, or
/// -1 with errno.
int ckvm_arm_watchdog(struct kvm_run *run, int signo, long long nanoseconds);
/// Deletes the calling thread's watchdog and restores its signal mask.
void ckvm_disarm_watchdog(void);

#endif
