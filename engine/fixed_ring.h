// Fixed-capacity FIFO and LIFO of trivially copyable values, sized once at create.
// They never grow (the point: no allocation after create). Not synchronised: the owner
// guards them with its own mutex.
#pragma once

#include <cstddef>
#include <memory>

namespace sectorcrypt::engine {

template <class T>
class FixedRing {
 public:
  void init(std::size_t capacity) {
    buf_ = std::make_unique<T[]>(capacity);
    cap_ = capacity;
    head_ = size_ = 0;
  }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == cap_; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return cap_; }
  // false when full (callers size the ring so that it cannot be).
  bool push(const T& v) {
    if (size_ == cap_) return false;
    buf_[(head_ + size_) % cap_] = v;
    ++size_;
    return true;
  }
  const T& front() const { return buf_[head_]; }  // only when !empty()
  const T& at(std::size_t i) const { return buf_[(head_ + i) % cap_]; }  // i < size()
  bool pop(T* out) {
    if (size_ == 0) return false;
    *out = buf_[head_];
    head_ = (head_ + 1) % cap_;
    --size_;
    return true;
  }

 private:
  std::unique_ptr<T[]> buf_;
  std::size_t cap_ = 0, head_ = 0, size_ = 0;
};

template <class T>
class FixedStack {
 public:
  void init(std::size_t capacity) {
    buf_ = std::make_unique<T[]>(capacity);
    cap_ = capacity;
    size_ = 0;
  }
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  bool push(const T& v) {
    if (size_ == cap_) return false;
    buf_[size_++] = v;
    return true;
  }
  bool pop(T* out) {
    if (size_ == 0) return false;
    *out = buf_[--size_];
    return true;
  }

 private:
  std::unique_ptr<T[]> buf_;
  std::size_t cap_ = 0, size_ = 0;
};

}  // namespace sectorcrypt::engine
