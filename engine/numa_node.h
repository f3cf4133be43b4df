// Where memory lives on a machine of several NUMA nodes, read from sysfs: which node a
// PCI device (a GPU) hangs off, and how many nodes there are. DMA from memory on the
// GPU's own node does not cross the socket link, so the CUDA backend's pinned slots are
// placed there when there is more than one node.
#pragma once

#include <string>

namespace sectorcrypt {

// The node of the PCI device with this bus id ("0000:3B:00.0", any case), under
// `sysfs_root` (normally "/sys"). -1 when unknown (no such file, or the kernel says -1).
int numa_node_of_pci_device(const std::string& sysfs_root, const std::string& bus_id);

// How many nodes sysfs lists (node0, node1, ...) under `sysfs_root`; 1 when it lists none.
int numa_node_count(const std::string& sysfs_root);

}  // namespace sectorcrypt
