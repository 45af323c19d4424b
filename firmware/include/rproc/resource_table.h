/*
 * Resource table structures for firmware, byte-compatible with Linux (include/linux/remoteproc.h) and OpenAMP
 * (lib/include/openamp/remoteproc.h). Each struct includes its leading type word, as OpenAMP's do; Linux's
 * omit it and start after it (struct fw_rsc_hdr). All little-endian and packed.
 *
 * Version 2 (64-bit addresses, sized entries) is rproc's proposal: docs/resource-table-v2.md.
 * Freestanding: needs only <stdint.h>.
 */
#ifndef RPROC_RESOURCE_TABLE_H
#define RPROC_RESOURCE_TABLE_H

#include <stdint.h>

#define RPROC_PACKED __attribute__((packed))
/* Put the table where Linux and OpenAMP look for it. */
#define RPROC_RESOURCE_TABLE __attribute__((section(".resource_table"), used, aligned(8)))

enum rproc_rsc_type {
	RSC_CARVEOUT = 0,
	RSC_DEVMEM = 1,
	RSC_TRACE = 2,
	RSC_VDEV = 3,
	RSC_VENDOR_START = 128,
	RSC_VENDOR_END = 512,
};

#define FW_RSC_ADDR_ANY 0xFFFFFFFFu
#define FW_RSC_ADDR_ANY64 0xFFFFFFFFFFFFFFFFull
#define FW_RSC_NOTIFY_ID_ANY 0xFFFFFFFFu

#define VIRTIO_ID_RPMSG 7u
#define VIRTIO_RPMSG_F_NS 0u

#define VIRTIO_CONFIG_S_ACKNOWLEDGE 0x01u
#define VIRTIO_CONFIG_S_DRIVER 0x02u
#define VIRTIO_CONFIG_S_DRIVER_OK 0x04u
#define VIRTIO_CONFIG_S_FAILED 0x80u
#define VIRTIO_CONFIG_S_FEATURES_OK 0x08u

struct resource_table_hdr {
	uint32_t ver;
	uint32_t num;
	uint32_t reserved[2];
	/* uint32_t offset[num] follows */
} RPROC_PACKED;

struct fw_rsc_carveout {
	uint32_t type;
	uint32_t da;
	uint32_t pa;
	uint32_t len;
	uint32_t flags;
	uint32_t reserved;
	char name[32];
} RPROC_PACKED;

struct fw_rsc_devmem {
	uint32_t type;
	uint32_t da;
	uint32_t pa;
	uint32_t len;
	uint32_t flags;
	uint32_t reserved;
	char name[32];
} RPROC_PACKED;

struct fw_rsc_trace {
	uint32_t type;
	uint32_t da;
	uint32_t len;
	uint32_t reserved;
	char name[32];
} RPROC_PACKED;

struct fw_rsc_vdev_vring {
	uint32_t da;
	uint32_t align;
	uint32_t num;
	uint32_t notifyid;
	uint32_t pa; /* "reserved" in OpenAMP */
} RPROC_PACKED;

struct fw_rsc_vdev {
	uint32_t type;
	uint32_t id;
	uint32_t notifyid;
	uint32_t dfeatures;
	uint32_t gfeatures;
	uint32_t config_len;
	uint8_t status;
	uint8_t num_of_vrings;
	uint8_t reserved[2];
	/* struct fw_rsc_vdev_vring vring[num_of_vrings], then config_len bytes */
} RPROC_PACKED;

/* OpenAMP's vendor header; what len counts is up to the platform. */
struct fw_rsc_vendor {
	uint32_t type;
	uint32_t len;
} RPROC_PACKED;

/* ---- version 2 ---------------------------------------------------------------------------------------- */
#define RSC_FLAG_OPTIONAL 0x1u

struct resource_table_hdr_v2 {
	uint32_t ver; /* 2 */
	uint32_t num;
	uint32_t size; /* whole table, header included */
	uint32_t reserved;
	/* uint32_t offset[num] follows; entries start 8-byte aligned */
} RPROC_PACKED;

struct fw_rsc_hdr_v2 {
	uint32_t type;
	uint32_t len; /* header + body, without the padding to 8 bytes */
	uint32_t flags;
	uint32_t reserved;
} RPROC_PACKED;

struct fw_rsc_carveout_v2 {
	struct fw_rsc_hdr_v2 hdr;
	uint64_t da;
	uint64_t pa;
	uint64_t len;
	uint32_t flags;
	uint32_t reserved;
	char name[32];
} RPROC_PACKED;

struct fw_rsc_trace_v2 {
	struct fw_rsc_hdr_v2 hdr;
	uint64_t da;
	uint32_t len;
	uint32_t reserved;
	char name[32];
} RPROC_PACKED;

struct fw_rsc_vdev_vring_v2 {
	uint64_t da;
	uint32_t align;
	uint32_t num;
	uint32_t notifyid;
	uint32_t pa;
} RPROC_PACKED;

struct fw_rsc_vdev_v2 {
	struct fw_rsc_hdr_v2 hdr;
	uint32_t id;
	uint32_t notifyid;
	uint64_t dfeatures;
	uint64_t gfeatures;
	uint32_t config_len;
	uint8_t status;
	uint8_t num_of_vrings;
	uint8_t reserved[2];
} RPROC_PACKED;

#define RPROC_ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " must be " #size " bytes")
RPROC_ASSERT_SIZE(struct resource_table_hdr, 16);
RPROC_ASSERT_SIZE(struct fw_rsc_carveout, 56);
RPROC_ASSERT_SIZE(struct fw_rsc_devmem, 56);
RPROC_ASSERT_SIZE(struct fw_rsc_trace, 48);
RPROC_ASSERT_SIZE(struct fw_rsc_vdev, 28);
RPROC_ASSERT_SIZE(struct fw_rsc_vdev_vring, 20);
RPROC_ASSERT_SIZE(struct resource_table_hdr_v2, 16);
RPROC_ASSERT_SIZE(struct fw_rsc_hdr_v2, 16);
RPROC_ASSERT_SIZE(struct fw_rsc_carveout_v2, 80);
RPROC_ASSERT_SIZE(struct fw_rsc_trace_v2, 64);
RPROC_ASSERT_SIZE(struct fw_rsc_vdev_v2, 48);
RPROC_ASSERT_SIZE(struct fw_rsc_vdev_vring_v2, 24);

#endif /* RPROC_RESOURCE_TABLE_H */
