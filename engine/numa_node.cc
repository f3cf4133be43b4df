#include "engine/numa_node.h"

#include <dirent.h>

#include <cctype>
#include <fstream>

namespace sectorcrypt {

int numa_node_of_pci_device(const std::string& sysfs_root, const std::string& bus_id) {
  std::string id = bus_id;
  for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::ifstream f(sysfs_root + "/bus/pci/devices/" + id + "/numa_node");
  int node = -1;
  if (!(f >> node) || node < 0) return -1;
  return node;
}

int numa_node_count(const std::string& sysfs_root) {
  DIR* d = opendir((sysfs_root + "/devices/system/node").c_str());
  if (d == nullptr) return 1;
  int count = 0;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > 4 && name.compare(0, 4, "node") == 0 &&
        std::isdigit(static_cast<unsigned char>(name[4]))) {
      ++count;
    }
  }
  closedir(d);
  return count > 0 ? count : 1;
}

}  // namespace sectorcrypt
