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

int ckvm_enable_user_msr_exits(int vm_fd) {
    struct kvm_enable_cap cap = {0};
    cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
    cap.args[0] = KVM_MSR_EXIT_REASON_FILTER;
    return ioctl(vm_fd, KVM_ENABLE_CAP, &cap);
}

int ckvm_set_msr_filter(int vm_fd, int default_deny, const uint8_t *read_low, const uint8_t *read_high,
                        const uint8_t *write_low, const uint8_t *write_high) {
    struct kvm_msr_filter filter = {0};
    filter.flags = default_deny ? KVM_MSR_FILTER_DEFAULT_DENY : KVM_MSR_FILTER_DEFAULT_ALLOW;
    const uint8_t *maps[4] = { read_low, read_high, write_low, write_high };
    for (int i = 0; i < 4; i++) {
        filter.ranges[i].flags = i < 2 ? KVM_MSR_FILTER_READ : KVM_MSR_FILTER_WRITE;
        filter.ranges[i].base = (i % 2 == 0) ? 0x0 : 0xC0000000u;
        filter.ranges[i].nmsrs = 0x2000;
        filter.ranges[i].bitmap = (uint8_t *)maps[i];
    }
    return ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, &filter);
}

uint32_t ckvm_msr_index(const struct kvm_run *run) { return run->msr.index; }
uint64_t ckvm_msr_data(const struct kvm_run *run) { return run->msr.data; }
void ckvm_msr_complete(struct kvm_run *run, uint64_t data, uint8_t error) { run->msr.data = data; run->msr.error = error; }

int ckvm_get_feature_msr(int kvm_fd, uint32_t index, uint64_t *value) {
    struct { struct kvm_msrs header; struct kvm_msr_entry entry; } request = {0};
    request.header.nmsrs = 1;
    request.entry.index = index;
    int r = ioctl(kvm_fd, KVM_GET_MSRS, &request);
    if (r == 1) *value = request.entry.data;
    return r;
}
