// SPDX-License-Identifier: GPL-2.0
/*
 * Remote processor driver for User-Mode Linux.
 *
 * The remote processor is a host process. Its memory is a host file that
 * UML maps as I/O memory (iomem=NAME,FILE on the command line); the kernel
 * and the remote see the same bytes. Device addresses are the region's
 * physical addresses in the guest (da == pa), as with memory a real SoC
 * shares between its cores, unless uml_rproc.da=DA gives the device address
 * of the file's offset 0. The vring descriptors the virtio core fills in
 * hold physical addresses either way, so the remote is told both.
 *
 * The doorbell is a host UNIX stream socket (uml_rproc.socket=PATH) which
 * carries 16-byte little-endian messages { u32 type; u32 arg; u64 value; }:
 *   to the remote:   HELLO (arg = usable size, value = da of offset 0),
 *                    PHYS (value = physical address of offset 0, right
 *                    after HELLO), START (value = boot address), STOP,
 *                    KICK (arg = vqid)
 *   from the remote: KICK (every vring is looked at), CRASH (arg = type),
 *                    STOPPED (the answer to STOP: the core is held)
 * Stopping waits for STOPPED, as a reset line takes effect before the core's
 * memory is reused (a restart writes it at once).
 * The remote's messages arrive as an interrupt; vring callbacks may sleep
 * (virtio_rpmsg_bus), so they are run from a work item.
 *
 * The vrings and the rpmsg buffers are carveouts registered before boot
 * under the names the remoteproc core looks up (vdev0vring0, vdev0vring1,
 * vdev0buffer), placed by uml_rproc.vring0=DA,LEN, uml_rproc.vring1=DA,LEN
 * and uml_rproc.buffer=DA,LEN; the buffer carveout becomes the vdev's DMA
 * pool. uml_rproc.carveouts=NAME@DA+LEN[,NAME@DA+LEN...] registers more
 * (vdev1vring0, vdev1buffer, or a carveout the resource table names).
 * Only vdevNvringM carveouts are given a kernel address (the virtio core
 * writes the vring through it); the others are given their physical
 * address only, which the core writes back into a resource table entry of
 * the same name and uses for the vdev's DMA pool.
 *
 * The whole memory is one coredump segment: after a crash, the core's
 * recovery (rproc_boot_recovery) writes it to a devcoredump device when
 * coredumps are enabled in debugfs (remoteprocN/coredump).
 *
 * One file (over the project's ~400 lines) as each remoteproc driver in
 * drivers/remoteproc/ is: uml_rproc.o is the module's one object.
 */

#include <linux/completion.h>
#include <linux/elf.h>
#include <linux/idr.h>
#include <linux/init.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/platform_device.h>
#include <linux/remoteproc.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <irq_kern.h>
#include <irq_user.h>
#include <mem_user.h>
#include <os.h>

#include "remoteproc_internal.h"

#define UML_RPROC_HELLO		1
#define UML_RPROC_START		2
#define UML_RPROC_STOP		3
#define UML_RPROC_KICK		4
#define UML_RPROC_CRASH		5
#define UML_RPROC_STOPPED	6
#define UML_RPROC_PHYS		7

/* A carveout's name: struct rproc_mem_entry's and fw_rsc_carveout's. */
#define UML_RPROC_NAME_LEN	32

/* How long stop waits for the remote's STOPPED. */
#define UML_RPROC_STOP_TIMEOUT_MS	5000

struct uml_rproc_msg {
	__le32 type;
	__le32 arg;
	__le64 value;
};

static char *socket_path;
module_param_named(socket, socket_path, charp, 0444);
MODULE_PARM_DESC(socket, "host UNIX socket of the remote processor");

static char *iomem_name = "rproc";
module_param_named(iomem, iomem_name, charp, 0444);
MODULE_PARM_DESC(iomem, "name of the iomem= region that is the remote's memory");

static char *firmware = "rproc-uml-fw.elf";
module_param(firmware, charp, 0444);
MODULE_PARM_DESC(firmware, "default firmware file name");

static unsigned long vring0[2], vring1[2], buffer[2];
static unsigned int vring0_n, vring1_n, buffer_n;
module_param_array(vring0, ulong, &vring0_n, 0444);
MODULE_PARM_DESC(vring0, "DA,LEN of the vdev0vring0 carveout");
module_param_array(vring1, ulong, &vring1_n, 0444);
MODULE_PARM_DESC(vring1, "DA,LEN of the vdev0vring1 carveout");
module_param_array(buffer, ulong, &buffer_n, 0444);
MODULE_PARM_DESC(buffer, "DA,LEN of the vdev0buffer carveout");

static char *carveouts;
module_param(carveouts, charp, 0444);
MODULE_PARM_DESC(carveouts, "more carveouts: NAME@DA+LEN[,NAME@DA+LEN...]");

/* ULLONG_MAX: the device address is the physical address. */
static unsigned long long mem_da = ULLONG_MAX;
module_param_named(da, mem_da, ullong, 0444);
MODULE_PARM_DESC(da, "device address of the memory's offset 0 (default: its physical address)");

struct uml_rproc_carveout {
	char name[UML_RPROC_NAME_LEN];
	u64 da;
	u64 len;
};

struct uml_rproc {
	struct rproc *rproc;
	void *va;		/* kernel address of offset 0 of the file */
	phys_addr_t pa;		/* physical address of offset 0 */
	u64 da;			/* device address of offset 0 */
	size_t size;		/* usable bytes */
	struct uml_rproc_carveout *carveouts;
	unsigned int num_carveouts;
	int fd;
	int irq;
	bool gone;
	struct work_struct vq_work;
	struct completion stopped;
};

static int uml_rproc_send(struct uml_rproc *priv, u32 type, u32 arg, u64 value)
{
	struct uml_rproc_msg msg = {
		.type = cpu_to_le32(type),
		.arg = cpu_to_le32(arg),
		.value = cpu_to_le64(value),
	};
	int n;

	do {
		n = os_write_file(priv->fd, &msg, sizeof(msg));
	} while (n == -EINTR);
	if (n != sizeof(msg)) {
		dev_err_ratelimited(priv->rproc->dev.parent,
				    "message %u to the remote not sent: %d\n",
				    type, n);
		return n < 0 ? n : -EIO;
	}
	return 0;
}

static void *uml_rproc_da_to_va(struct rproc *rproc, u64 da, size_t len,
				bool *is_iomem)
{
	struct uml_rproc *priv = rproc->priv;
	u64 offset;

	if (da < priv->da)
		return NULL;
	offset = da - priv->da;
	if (offset > priv->size || len > priv->size - offset)
		return NULL;
	return priv->va + offset;
}

/* A vring carveout, vdevNvringM, which the virtio core writes through its va. */
static bool uml_rproc_is_vring(const char *name)
{
	unsigned int vdev, vring;
	int n = 0;

	return sscanf(name, "vdev%uvring%u%n", &vdev, &vring, &n) == 2 &&
	       !name[n];
}

static int uml_rproc_add_carveout(struct rproc *rproc,
				  const struct uml_rproc_carveout *c)
{
	struct uml_rproc *priv = rproc->priv;
	struct rproc_mem_entry *mem;
	void *va = uml_rproc_da_to_va(rproc, c->da, c->len, NULL);

	/*
	 * Other carveouts are given without a kernel address: the core then
	 * maps the buffer carveout through dma_declare_coherent_memory() from
	 * its physical address, and writes that address into the resource
	 * table entry of a carveout's name (rproc_alloc_registered_carveouts).
	 */
	mem = rproc_mem_entry_init(rproc->dev.parent,
				   uml_rproc_is_vring(c->name) ? va : NULL,
				   (dma_addr_t)(priv->pa + (c->da - priv->da)),
				   c->len, c->da, NULL, NULL, "%s", c->name);
	if (!mem)
		return -ENOMEM;
	rproc_add_carveout(rproc, mem);
	return 0;
}

static int uml_rproc_prepare(struct rproc *rproc)
{
	struct uml_rproc *priv = rproc->priv;
	unsigned int i;
	int ret;

	/* Registered at each boot: rproc_resource_cleanup() frees them. */
	for (i = 0; i < priv->num_carveouts; i++) {
		ret = uml_rproc_add_carveout(rproc, &priv->carveouts[i]);
		if (ret)
			return ret;
	}
	return rproc_coredump_add_segment(rproc, priv->da, priv->size);
}

static int uml_rproc_start(struct rproc *rproc)
{
	return uml_rproc_send(rproc->priv, UML_RPROC_START, 0, rproc->bootaddr);
}

static int uml_rproc_stop(struct rproc *rproc)
{
	struct uml_rproc *priv = rproc->priv;
	int ret;

	reinit_completion(&priv->stopped);
	ret = uml_rproc_send(priv, UML_RPROC_STOP, 0, 0);
	if (!ret && !priv->gone &&
	    !wait_for_completion_timeout(&priv->stopped,
			msecs_to_jiffies(UML_RPROC_STOP_TIMEOUT_MS)))
		dev_warn(rproc->dev.parent,
			 "the remote did not answer STOP within %d ms\n",
			 UML_RPROC_STOP_TIMEOUT_MS);
	cancel_work_sync(&priv->vq_work);
	return priv->gone ? 0 : ret;
}

static void uml_rproc_kick(struct rproc *rproc, int vqid)
{
	uml_rproc_send(rproc->priv, UML_RPROC_KICK, vqid, 0);
}

static int uml_rproc_notify_vq(int id, void *p, void *data)
{
	rproc_vq_interrupt(data, id);
	return 0;
}

static void uml_rproc_vq_work(struct work_struct *work)
{
	struct uml_rproc *priv = container_of(work, struct uml_rproc, vq_work);

	/* One doorbell for all vrings: look at each, as imx_rproc does. */
	idr_for_each(&priv->rproc->notifyids, uml_rproc_notify_vq, priv->rproc);
}

static irqreturn_t uml_rproc_interrupt(int irq, void *data)
{
	struct uml_rproc *priv = data;
	struct uml_rproc_msg msg;
	int n;

	for (;;) {
		n = os_read_file(priv->fd, &msg, sizeof(msg));
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			break;
		if (n == 0) {
			/* The remote is gone: a crash if it was running. */
			if (!priv->gone) {
				priv->gone = true;
				complete(&priv->stopped);
				dev_err(priv->rproc->dev.parent,
					"the remote closed its socket\n");
				if (priv->rproc->state == RPROC_RUNNING)
					rproc_report_crash(priv->rproc,
							   RPROC_FATAL_ERROR);
			}
			break;
		}
		if (n != sizeof(msg)) {
			dev_err_ratelimited(priv->rproc->dev.parent,
					    "short read from the remote: %d\n",
					    n);
			break;
		}
		switch (le32_to_cpu(msg.type)) {
		case UML_RPROC_KICK:
			schedule_work(&priv->vq_work);
			break;
		case UML_RPROC_STOPPED:
			complete(&priv->stopped);
			break;
		case UML_RPROC_CRASH:
			rproc_report_crash(priv->rproc,
					   le32_to_cpu(msg.arg) == RPROC_WATCHDOG ?
					   RPROC_WATCHDOG : RPROC_FATAL_ERROR);
			break;
		default:
			dev_warn_ratelimited(priv->rproc->dev.parent,
					     "unknown message %u from the remote\n",
					     le32_to_cpu(msg.type));
		}
	}
	return IRQ_HANDLED;
}

static const struct rproc_ops uml_rproc_ops = {
	.prepare	= uml_rproc_prepare,
	.start		= uml_rproc_start,
	.stop		= uml_rproc_stop,
	.kick		= uml_rproc_kick,
	.da_to_va	= uml_rproc_da_to_va,
	.load		= rproc_elf_load_segments,
	.parse_fw	= rproc_elf_load_rsc_table,
	.find_loaded_rsc_table = rproc_elf_find_loaded_rsc_table,
	.sanity_check	= rproc_elf_sanity_check,
	.get_boot_addr	= rproc_elf_get_boot_addr,
};

/* Undone by devres in reverse order: rproc_del(), the interrupt, the socket. */
static void uml_rproc_close(void *data)
{
	struct uml_rproc *priv = data;

	os_close_file(priv->fd);
}

static void uml_rproc_free_irq(void *data)
{
	struct uml_rproc *priv = data;

	um_free_irq(priv->irq, priv);
	cancel_work_sync(&priv->vq_work);
}

static int uml_rproc_check_carveout(struct device *dev, struct uml_rproc *priv,
				    const struct uml_rproc_carveout *c)
{
	unsigned int i;

	if (c->da < priv->da || c->da - priv->da > priv->size ||
	    c->len > priv->size - (c->da - priv->da) || c->da > U32_MAX ||
	    c->len > U32_MAX) {
		dev_err(dev, "carveout %s 0x%llx+0x%llx is outside the memory\n",
			c->name, c->da, c->len);
		return -EINVAL;
	}
	for (i = 0; i < priv->num_carveouts; i++) {
		if (!strcmp(priv->carveouts[i].name, c->name)) {
			dev_err(dev, "carveout %s is given twice\n", c->name);
			return -EINVAL;
		}
	}
	priv->carveouts[priv->num_carveouts++] = *c;
	return 0;
}

static int uml_rproc_add_range(struct device *dev, struct uml_rproc *priv,
			       const char *name, const unsigned long *range,
			       unsigned int n)
{
	struct uml_rproc_carveout c = { };

	if (n == 0)
		return 0;
	if (n != 2) {
		dev_err(dev, "%s: want DA,LEN\n", name);
		return -EINVAL;
	}
	strscpy(c.name, name, sizeof(c.name));
	c.da = range[0];
	c.len = range[1];
	return uml_rproc_check_carveout(dev, priv, &c);
}

/* One NAME@DA+LEN of uml_rproc.carveouts=; the string is cut up. */
static int uml_rproc_parse_carveout(struct device *dev, struct uml_rproc *priv,
				    char *item)
{
	struct uml_rproc_carveout c = { };
	char *at = strchr(item, '@');
	char *plus = at ? strchr(at, '+') : NULL;

	if (!plus)
		goto bad;
	*at = '\0';
	*plus = '\0';
	if (!*item || strlen(item) >= sizeof(c.name) ||
	    kstrtoull(at + 1, 0, &c.da) || kstrtoull(plus + 1, 0, &c.len)) {
		*at = '@';
		*plus = '+';
		goto bad;
	}
	strscpy(c.name, item, sizeof(c.name));
	return uml_rproc_check_carveout(dev, priv, &c);
bad:
	dev_err(dev, "carveouts: \"%s\" is not NAME@DA+LEN (a name of 1 to %d characters)\n",
		item, UML_RPROC_NAME_LEN - 1);
	return -EINVAL;
}

static int uml_rproc_parse_carveouts(struct device *dev, struct uml_rproc *priv)
{
	unsigned int max = 3;
	char *list, *cur, *item;
	int ret = 0;

	if (carveouts)
		max += 1 + strlen(carveouts);	/* at most one per character */
	priv->carveouts = devm_kcalloc(dev, max, sizeof(*priv->carveouts),
				       GFP_KERNEL);
	if (!priv->carveouts)
		return -ENOMEM;
	ret = uml_rproc_add_range(dev, priv, "vdev0vring0", vring0, vring0_n);
	if (!ret)
		ret = uml_rproc_add_range(dev, priv, "vdev0vring1", vring1,
					  vring1_n);
	if (!ret)
		ret = uml_rproc_add_range(dev, priv, "vdev0buffer", buffer,
					  buffer_n);
	if (ret || !carveouts || !*carveouts)
		return ret;

	list = kstrdup(carveouts, GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	cur = list;
	while (!ret && (item = strsep(&cur, ",")))
		ret = uml_rproc_parse_carveout(dev, priv, item);
	kfree(list);
	return ret;
}

static int uml_rproc_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct uml_rproc *priv;
	struct rproc *rproc;
	unsigned long len = 0;
	unsigned long va;
	int ret;

	va = find_iomem(iomem_name, &len);
	/*
	 * parse_iomem() rounds the file's size up to the next page boundary
	 * and adds a page when it already was one: the file is len - PAGE_SIZE
	 * bytes long when its size is a multiple of the page size.
	 */
	if (!va || len <= PAGE_SIZE)
		return dev_err_probe(dev, -ENODEV,
				     "no iomem region named %s\n", iomem_name);

	rproc = devm_rproc_alloc(dev, "uml-rproc", &uml_rproc_ops, firmware,
				 sizeof(*priv));
	if (!rproc)
		return -ENOMEM;
	rproc->auto_boot = false;
	priv = rproc->priv;
	priv->rproc = rproc;
	priv->va = (void *)va;
	priv->pa = virt_to_phys(priv->va);
	priv->da = mem_da == ULLONG_MAX ? priv->pa : mem_da;
	priv->size = len - PAGE_SIZE;
	if (priv->da > U64_MAX - priv->size)
		return dev_err_probe(dev, -EINVAL,
				     "da 0x%llx: the memory would end past 2^64\n",
				     priv->da);
	ret = uml_rproc_parse_carveouts(dev, priv);
	if (ret)
		return ret;
	ret = rproc_coredump_set_elf_info(rproc,
					  priv->da + priv->size - 1 > U32_MAX ?
					  ELFCLASS64 : ELFCLASS32, EM_NONE);
	if (ret)
		return ret;
	INIT_WORK(&priv->vq_work, uml_rproc_vq_work);
	init_completion(&priv->stopped);

	priv->fd = os_connect_socket(socket_path);
	if (priv->fd < 0)
		return dev_err_probe(dev, priv->fd, "cannot connect to %s\n",
				     socket_path);
	ret = devm_add_action_or_reset(dev, uml_rproc_close, priv);
	if (ret)
		return ret;
	ret = os_set_fd_block(priv->fd, 0);
	if (ret)
		return ret;
	ret = um_request_irq(UM_IRQ_ALLOC, priv->fd, IRQ_READ,
			     uml_rproc_interrupt, 0, "uml-rproc", priv);
	if (ret < 0)
		return ret;
	priv->irq = ret;
	ret = devm_add_action_or_reset(dev, uml_rproc_free_irq, priv);
	if (ret)
		return ret;

	ret = uml_rproc_send(priv, UML_RPROC_HELLO, priv->size, priv->da);
	if (!ret)
		ret = uml_rproc_send(priv, UML_RPROC_PHYS, 0, priv->pa);
	if (ret)
		return ret;
	ret = devm_rproc_add(dev, rproc);
	if (ret)
		return ret;
	dev_info(dev, "memory %s: da 0x%llx, 0x%zx bytes; remote at %s\n",
		 iomem_name, priv->da, priv->size, socket_path);
	if (priv->da != priv->pa)
		dev_info(dev, "memory %s: pa %pa\n", iomem_name, &priv->pa);
	return 0;
}

static struct platform_driver uml_rproc_driver = {
	.probe = uml_rproc_probe,
	.driver = {
		.name = "uml-rproc",
	},
};

static struct platform_device *uml_rproc_device;

static int __init uml_rproc_init(void)
{
	int ret;

	if (!socket_path)
		return 0;	/* no remote processor configured */
	ret = platform_driver_register(&uml_rproc_driver);
	if (ret)
		return ret;
	uml_rproc_device = platform_device_register_simple("uml-rproc", -1,
							   NULL, 0);
	if (IS_ERR(uml_rproc_device)) {
		platform_driver_unregister(&uml_rproc_driver);
		return PTR_ERR(uml_rproc_device);
	}
	return 0;
}

/* After setup_iomem() (an __initcall) has mapped the iomem= regions. */
late_initcall(uml_rproc_init);

MODULE_DESCRIPTION("User-Mode Linux remote processor");
MODULE_LICENSE("GPL");
