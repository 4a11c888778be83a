#include "ckvm.h"
#include <errno.h>
#include <sys/ioctl.h>

const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
const unsigned long CKVM_RUN = KVM_RUN;
const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
const unsigned long CKVM_TRANSLATE = KVM_TRANSLATE;

const uint32_t CKVM_MEM_READONLY = KVM_MEM_READONLY;
const int CKVM_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY;
const int CKVM_CAP_READONLY_MEM = KVM_CAP_READONLY_MEM;
const int CKVM_CAP_NR_MEMSLOTS = KVM_CAP_NR_MEMSLOTS;

int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }
int ckvm_ioctl_int(int fd, unsigned long request, unsigned long argument) { return ioctl(fd, request, argument); }
int ckvm_errno(void) { return errno; }

uint32_t ckvm_exit_reason(const struct kvm_run *run) { return run->exit_reason; }
uint8_t ckvm_io_direction(const struct kvm_run *run) { return run->io.direction; }
uint8_t ckvm_io_size(const struct kvm_run *run) { return run->io.size; }
uint16_t ckvm_io_port(const struct kvm_run *run) { return run->io.port; }
uint32_t ckvm_io_count(const struct kvm_run *run) { return run->io.count; }
uint64_t ckvm_io_data_offset(const struct kvm_run *run) { return run->io.data_offset; }
uint64_t ckvm_mmio_address(const struct kvm_run *run) { return run->mmio.phys_addr; }
uint8_t *ckvm_mmio_data(struct kvm_run *run) { return run->mmio.data; }
uint32_t ckvm_mmio_length(const struct kvm_run *run) { return run->mmio.len; }
uint8_t ckvm_mmio_is_write(const struct kvm_run *run) { return run->mmio.is_write; }
uint32_t ckvm_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }
uint64_t ckvm_fail_entry_reason(const struct kvm_run *run) { return run->fail_entry.hardware_entry_failure_reason; }
