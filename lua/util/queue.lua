-- util.queue: a bounded first-in first-out queue (Prosody's), a ring
-- buffer of a fixed size.
--
--   local q = queue.new(size[, allow_wrapping])
--   q:push(item)  --> true, or nil, "queue full" (with allow_wrapping the
--                     oldest item is dropped instead)
--   q:pop()  q:peek()  q:count()  q:size()  q:full()
--   q:items()   iterates without removing;  q:consume()  pops while iterating
--   q:replace(item)  sets the newest item

local error, type = error, type

local M = {}

function M.new(size, allow_wrapping)
	if type(size) ~= "number" or size < 1 then
		error("queue size must be a number >= 1", 2)
	end
	local head, tail, items, count = 1, 1, {}, 0
	local q = {}
	q.size = function() return size end
	q.count = function() return count end
	q.full = function() return count >= size end
	function q.push(_, item)
		if count >= size then
			if not allow_wrapping then
				return nil, "queue full"
			end
			head = head % size + 1
			count = count - 1
		end
		items[tail] = item
		tail = tail % size + 1
		count = count + 1
		return true
	end
	function q.pop()
		if count == 0 then
			return nil
		end
		local item = items[head]
		items[head] = nil
		head = head % size + 1
		count = count - 1
		return item
	end
	function q.peek()
		if count == 0 then
			return nil
		end
		return items[head]
	end
	function q.replace(_, item)
		if count == 0 then
			return q:push(item)
		end
		local last = (tail - 2) % size + 1
		items[last] = item
		return true
	end
	function q.items()
		local i, pos = 0, head
		return function()
			if i >= count then
				return nil
			end
			local item = items[pos]
			i, pos = i + 1, pos % size + 1
			return item
		end
	end
	function q.consume()
		return function()
			return q.pop()
		end
	end
	return q
end

return M
